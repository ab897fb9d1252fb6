"""A fake cgroup file system in a temporary directory, for tests of the cgroup drivers and the
metrics without root: trees of either version, with the kernel's interface files and statistics
as the kernel writes them."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from supervisor.model.spec import Resources
from supervisor.model.units import CpuSet

UNLIMITED_V1 = "9223372036854771712"
EVERYTHING = Resources(memory_max=256 << 20, cpu_quota=0.5, cpu_weight=200,
                       cpuset_cpus=CpuSet.of("0-1"), pids_max=64)

NO_PRESSURE = "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n" \
    "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
V2_CORE = {
    "cgroup.procs": "",
    "cgroup.events": "populated 0\nfrozen 0\n",
    "cgroup.freeze": "0\n",
    "cgroup.kill": "",
    "cgroup.subtree_control": "\n",
    "cgroup.type": "domain\n",
    "cpu.stat": "usage_usec 0\nuser_usec 0\nsystem_usec 0\n",  # core, without the cpu controller
    "cpu.pressure": NO_PRESSURE,  # pressure stall information: core files too
    "memory.pressure": NO_PRESSURE,
    "io.pressure": NO_PRESSURE,
}
V2_CONTROLLER_FILES = {
    "cpu": {
        "cpu.max": "max 100000\n",
        "cpu.weight": "100\n",
        "cpu.stat": "usage_usec 0\nuser_usec 0\nsystem_usec 0\ncore_sched.force_idle_usec 0\n"
        "nr_periods 0\nnr_throttled 0\nthrottled_usec 0\nnr_bursts 0\nburst_usec 0\n",
    },
    "cpuset": {"cpuset.cpus": "\n", "cpuset.cpus.effective": "0-3\n", "cpuset.mems": "\n",
               "cpuset.mems.effective": "0\n"},
    "io": {"io.max": "", "io.stat": "", "io.weight": "default 100\n"},
    "memory": {
        "memory.max": "max\n",
        "memory.high": "max\n",
        "memory.swap.max": "max\n",
        "memory.current": "0\n",
        "memory.stat": "anon 0\nfile 0\ninactive_file 0\n",
        "memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n",
    },
    "pids": {"pids.max": "max\n", "pids.current": "0\n"},
}

V1_CORE = {"cgroup.procs": "", "tasks": "", "notify_on_release": "0\n",
           "cgroup.clone_children": "0\n"}
V1_CONTROLLER_FILES = {
    "memory": {
        "memory.limit_in_bytes": f"{UNLIMITED_V1}\n",
        "memory.memsw.limit_in_bytes": f"{UNLIMITED_V1}\n",
        "memory.usage_in_bytes": "0\n",
        "memory.stat": "cache 0\nrss 0\ninactive_file 0\ntotal_cache 0\ntotal_rss 0\n"
        "total_inactive_file 0\n",
        "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
        "memory.failcnt": "0\n",
        "memory.soft_limit_in_bytes": f"{UNLIMITED_V1}\n",
    },
    "cpu": {
        "cpu.cfs_quota_us": "-1\n",
        "cpu.cfs_period_us": "100000\n",
        "cpu.shares": "1024\n",
        "cpu.stat": "nr_periods 0\nnr_throttled 0\nthrottled_time 0\nnr_bursts 0\nburst_time 0\n",
    },
    "cpuacct": {"cpuacct.usage": "0\n", "cpuacct.stat": "user 0\nsystem 0\n"},
    "cpuset": {"cpuset.cpus": "\n", "cpuset.mems": "\n", "cpuset.effective_cpus": "\n"},
    "pids": {"pids.max": "max\n", "pids.current": "0\n"},
    "freezer": {"freezer.state": "THAWED\n"},
    "devices": {"devices.allow": "", "devices.deny": "", "devices.list": "a *:* rwm\n"},
    "blkio": {
        "blkio.throttle.read_bps_device": "", "blkio.throttle.write_bps_device": "",
        "blkio.throttle.read_iops_device": "", "blkio.throttle.write_iops_device": "",
        "blkio.throttle.io_service_bytes_recursive": "Total 0\n",
        "blkio.throttle.io_serviced_recursive": "Total 0\n",
    },
}
V1_CONTROLLERS = ("memory", "cpu", "cpuacct", "cpuset", "pids", "freezer", "devices", "blkio")

# Statistics as the kernel writes them (6.1), for a container that has run for a while.
V2_CPU_STAT = """usage_usec 2345678
user_usec 1500000
system_usec 845678
core_sched.force_idle_usec 0
nr_periods 420
nr_throttled 37
throttled_usec 1234567
nr_bursts 0
burst_usec 0
"""
V2_MEMORY_STAT = """anon 10584064
file 20082688
kernel 1523712
kernel_stack 98304
pagetables 270336
sec_pagetables 0
percpu 480
sock 0
vmalloc 8192
shmem 4096
zswap 0
zswapped 0
file_mapped 6307840
file_dirty 0
file_writeback 0
swapcached 0
anon_thp 0
file_thp 0
shmem_thp 0
inactive_anon 10575872
active_anon 12288
inactive_file 14626816
active_file 5451776
unevictable 0
slab_reclaimable 741216
slab_unreclaimable 313376
slab 1054592
workingset_refault_anon 0
workingset_refault_file 0
workingset_activate_anon 0
workingset_activate_file 0
workingset_restore_anon 0
workingset_restore_file 0
workingset_nodereclaim 0
pgscan 0
pgsteal 0
pgfault 11388
pgmajfault 106
pgrefill 0
pgactivate 1329
pgdeactivate 0
thp_fault_alloc 0
thp_collapse_alloc 0
"""
V2_MEMORY_EVENTS = "low 0\nhigh 0\nmax 17\noom 2\noom_kill 2\noom_group_kill 0\n"

V1_CPUACCT_STAT = "user 250\nsystem 64\n"
V1_CPU_STAT = "nr_periods 512\nnr_throttled 128\nthrottled_time 9876543210\nnr_bursts 0\n" \
    "burst_time 0\n"
V1_MEMORY_STAT = """cache 1048576
rss 2097152
rss_huge 0
shmem 0
mapped_file 524288
dirty 0
writeback 0
workingset_refault_anon 0
workingset_refault_file 0
swap 0
swapcached 0
pgpgin 21730
pgpgout 9210
pgfault 25603
pgmajfault 11
inactive_anon 2097152
active_anon 0
inactive_file 786432
active_file 262144
unevictable 0
hierarchical_memory_limit 134217728
hierarchical_memsw_limit 134217728
total_cache 8388608
total_rss 41943040
total_rss_huge 0
total_shmem 0
total_mapped_file 4194304
total_dirty 0
total_writeback 0
total_workingset_refault_anon 0
total_workingset_refault_file 0
total_swap 0
total_swapcached 0
total_pgpgin 43460
total_pgpgout 18420
total_pgfault 51206
total_pgmajfault 22
total_inactive_anon 41943040
total_active_anon 0
total_inactive_file 6291456
total_active_file 2097152
total_unevictable 0
"""
V1_OOM_CONTROL = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n"
V2_IO_STAT = "254:0 rbytes=5242880 wbytes=10485760 rios=10 wios=20 dbytes=0 dios=0\n" \
    "253:0 rbytes=4096 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n"
V1_IO_SERVICE_BYTES = """254:0 Read 5242880
254:0 Write 10485760
254:0 Sync 15728640
254:0 Async 0
254:0 Discard 0
254:0 Total 15728640
Total 15728640
"""
V1_IO_SERVICED = """254:0 Read 10
254:0 Write 20
254:0 Sync 30
254:0 Async 0
254:0 Discard 0
254:0 Total 30
Total 30
"""
# As the kernel writes a cgroup's pressure (µs totals); cpu's full line is there since 5.13.
CPU_PRESSURE = "some avg10=1.50 avg60=0.80 avg300=0.20 total=2500000\n" \
    "full avg10=0.00 avg60=0.00 avg300=0.00 total=125000\n"
MEMORY_PRESSURE = "some avg10=0.00 avg60=0.00 avg300=0.00 total=42\n" \
    "full avg10=0.00 avg60=0.00 avg300=0.00 total=21\n"
IO_PRESSURE = "some avg10=3.10 avg60=1.00 avg300=0.30 total=7000000\n" \
    "full avg10=2.00 avg60=0.70 avg300=0.20 total=5000000\n"


def write_files(directory: Path, contents: dict[str, str]) -> None:
    for name, text in contents.items():
        (directory / name).write_text(text)


class FakeCgroupFs:
    """Plays the kernel's part in ``mkdir`` and ``rmdir`` of cgroup directories under ``root``."""

    def __init__(self, root: Path, swap: bool = True) -> None:
        self.root = root
        self.swap = swap

    def make_dir(self, path: Path) -> bool:
        if path.exists():
            return False
        path.mkdir()
        write_files(path, self.new_files(path))
        return True

    def remove_dir(self, path: Path) -> None:
        if any(child.is_dir() for child in path.iterdir()):
            raise OSError(errno.EBUSY, os.strerror(errno.EBUSY), str(path))  # as the kernel
        for child in path.iterdir():
            if child.is_file():
                child.unlink()
        path.rmdir()

    def new_files(self, path: Path) -> dict[str, str]:
        """The interface files of a new cgroup directory at ``path``."""
        hierarchy = path.resolve().relative_to(self.root.resolve()).parts[0]
        if (self.root / "cgroup.controllers").exists():  # pure v2: the parent says what is enabled
            return self.v2_files((path.parent / "cgroup.subtree_control").read_text())
        if hierarchy == "unified":
            return self.v2_files("")
        contents = dict(V1_CORE)
        for controller in hierarchy.split(","):
            contents.update(V1_CONTROLLER_FILES[controller])
        if not self.swap:
            contents.pop("memory.memsw.limit_in_bytes", None)
        return contents

    def v2_files(self, subtree_control: str) -> dict[str, str]:
        contents = dict(V2_CORE)
        for controller in subtree_control.replace("+", "").split():
            contents.update(V2_CONTROLLER_FILES[controller])
        if not self.swap:
            contents.pop("memory.swap.max", None)
        contents["cgroup.controllers"] = subtree_control.replace("+", "")
        return contents


V2_HOST_CONTROLLERS = "cpuset cpu io memory hugetlb pids rdma misc"


def make_v2_root(root: Path, controllers: str = V2_HOST_CONTROLLERS) -> Path:
    root.mkdir(exist_ok=True)
    write_files(root, {"cgroup.controllers": f"{controllers}\n", "cgroup.subtree_control": "\n",
                 "cgroup.procs": "1\n", "cpuset.cpus.effective": "0-3\n",
                 "cpuset.mems.effective": "0\n"})
    return root


def make_v1_root(root: Path, hierarchies: tuple[str, ...] = V1_CONTROLLERS,
                 unified: bool = False) -> Path:
    """A v1 tree with one mount per entry of ``hierarchies`` (e.g. ``cpu,cpuacct``)."""
    root.mkdir(exist_ok=True)
    for hierarchy in hierarchies:
        directory = root / hierarchy
        directory.mkdir()
        contents = dict(V1_CORE)
        for controller in hierarchy.split(","):
            contents.update(V1_CONTROLLER_FILES[controller])
        if "cpuset" in hierarchy.split(","):
            contents.update({"cpuset.cpus": "0-3\n", "cpuset.mems": "0\n"})
        write_files(directory, contents)
    if unified:
        (root / "unified").mkdir()
        write_files(root / "unified", {"cgroup.controllers": "\n", "cgroup.procs": "1\n",
                                 "cgroup.subtree_control": "\n"})
    return root


