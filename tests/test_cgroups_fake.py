"""The cgroup drivers against fake cgroup trees in a temporary directory.

The fake stands in for cgroupfs only where that differs from a plain directory: a new cgroup
directory is filled with the interface files the kernel would create, with the kernel's initial
values, and rmdir takes them away. Everything else is the drivers' own reads and writes, checked
file by file; the statistics files hold contents as the kernel writes them.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from supervisor.config.spec import DeviceRule, Resources
from supervisor.runtime.cgroups import (
    CgroupUnavailableError,
    CgroupWriteError,
    detect,
    files,
    open_driver,
)
from supervisor.runtime.cgroups.limits import cpu_shares
from supervisor.runtime.cgroups.v1.driver import V1Driver
from supervisor.runtime.cgroups.v2 import devices as v2_devices

UNLIMITED_V1 = "9223372036854771712"
EVERYTHING = Resources(
    memory_max=256 << 20, cpu_quota=0.5, cpu_weight=200, cpuset_cpus="0-1", pids_max=64
)

V2_CORE = {
    "cgroup.procs": "",
    "cgroup.events": "populated 0\nfrozen 0\n",
    "cgroup.freeze": "0\n",
    "cgroup.kill": "",
    "cgroup.subtree_control": "\n",
    "cgroup.type": "domain\n",
    "cpu.stat": "usage_usec 0\nuser_usec 0\nsystem_usec 0\n",  # core, without the cpu controller
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
    "memory": {
        "memory.max": "max\n",
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
}
V1_CONTROLLERS = ("memory", "cpu", "cpuacct", "cpuset", "pids", "freezer", "devices")

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


def _fill(directory: Path, contents: dict[str, str]) -> None:
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
        _fill(path, self.new_files(path))
        return True

    def remove_dir(self, path: Path) -> None:
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
    _fill(root, {"cgroup.controllers": f"{controllers}\n", "cgroup.subtree_control": "\n",
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
        _fill(directory, contents)
    if unified:
        (root / "unified").mkdir()
        _fill(root / "unified", {"cgroup.controllers": "\n", "cgroup.procs": "1\n",
                                 "cgroup.subtree_control": "\n"})
    return root


@pytest.fixture
def fake_fs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """Installs a :class:`FakeCgroupFs` for the root the test builds; returns that root."""

    def install(root: Path, swap: bool = True) -> Path:
        fake = FakeCgroupFs(root, swap=swap)
        monkeypatch.setattr(files, "make_dir", fake.make_dir)
        monkeypatch.setattr(files, "remove_dir", fake.remove_dir)
        return root

    return install


@pytest.fixture
def v2_root(tmp_path: Path, fake_fs: Callable[..., Path]) -> Path:
    return fake_fs(make_v2_root(tmp_path / "cgroup"))


@pytest.fixture
def v1_root(tmp_path: Path, fake_fs: Callable[..., Path]) -> Path:
    return fake_fs(make_v1_root(tmp_path / "cgroup"))


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(["sleep", "30"])
    try:
        yield process
    finally:
        process.kill()
        process.wait()


def read(path: Path) -> str:
    return path.read_text().strip()


# --- cgroup v2 -------------------------------------------------------------------------------

def test_v2_create_delegates_controllers_and_writes_every_limit(v2_root: Path) -> None:
    cgroup = open_driver("cgroupfs-v2", root=v2_root).create("web", EVERYTHING)

    for level in (v2_root, v2_root / "ctr"):
        assert read(level / "cgroup.subtree_control") == "+cpu +cpuset +memory +pids"
    web = v2_root / "ctr" / "web"
    assert read(web / "memory.max") == str(256 << 20)
    assert read(web / "memory.swap.max") == "0"
    assert read(web / "cpu.max") == "50000 100000"
    assert read(web / "cpu.weight") == "200"
    assert read(web / "cpuset.cpus") == "0-1"
    assert read(web / "pids.max") == "64"
    assert cgroup.procs_paths() == [web / "cgroup.procs"]
    assert cgroup.directories() == [web]


@pytest.mark.parametrize(("cpus", "cpu_max"), [
    (1.5, "150000 100000"), (0.25, "25000 100000"), (0.0001, "1000 100000"),
])
def test_v2_cpu_quota_becomes_cpu_max(v2_root: Path, cpus: float, cpu_max: str) -> None:
    open_driver("cgroupfs-v2", root=v2_root).create("web", Resources(cpu_quota=cpus))
    assert read(v2_root / "ctr" / "web" / "cpu.max") == cpu_max


def test_v2_apply_changes_only_the_limits_given(v2_root: Path) -> None:
    cgroup = open_driver("cgroupfs-v2", root=v2_root).create("web", EVERYTHING)
    cgroup.apply(Resources(pids_max=10, cpu_weight=50))
    web = v2_root / "ctr" / "web"
    assert read(web / "pids.max") == "10"
    assert read(web / "cpu.weight") == "50"
    assert read(web / "memory.max") == str(256 << 20)
    assert read(web / "cpu.max") == "50000 100000"
    assert read(web / "cpuset.cpus") == "0-1"


def test_v2_create_without_limits_writes_none(v2_root: Path) -> None:
    open_driver("cgroupfs-v2", root=v2_root).create("web", Resources())
    web = v2_root / "ctr" / "web"
    assert read(web / "memory.max") == "max"
    assert read(web / "memory.swap.max") == "max"
    assert read(web / "cpu.max") == "max 100000"
    assert read(web / "pids.max") == "max"


def test_v2_nested_parent_delegates_at_every_level(v2_root: Path) -> None:
    open_driver("cgroupfs-v2", root=v2_root, parent="ctr.slice/pool").create("web", Resources())
    for level in (v2_root, v2_root / "ctr.slice", v2_root / "ctr.slice" / "pool"):
        assert read(level / "cgroup.subtree_control") == "+cpu +cpuset +memory +pids"
    assert (v2_root / "ctr.slice" / "pool" / "web" / "cpu.max").exists()


def test_v2_cpuset_outside_the_parent_is_refused_and_nothing_is_left(v2_root: Path) -> None:
    driver = open_driver("cgroupfs-v2", root=v2_root)
    with pytest.raises(ValueError, match=r"'99' to .*/ctr/web/cpuset\.cpus.*CPU 99"):
        driver.create("web", Resources(cpuset_cpus="99"))
    assert not (v2_root / "ctr" / "web").exists()
    assert driver.list() == []


def test_v2_host_without_cpuset_or_swap(tmp_path: Path, fake_fs: Callable[..., Path]) -> None:
    root = fake_fs(make_v2_root(tmp_path / "cgroup", controllers="cpu io memory pids"), swap=False)
    driver = open_driver("auto", root=root)
    cgroup = driver.create("web", Resources(memory_max=1 << 20))
    assert read(root / "ctr" / "cgroup.subtree_control") == "+cpu +memory +pids"
    assert read(root / "ctr" / "web" / "memory.max") == str(1 << 20)
    assert not (root / "ctr" / "web" / "memory.swap.max").exists()
    with pytest.raises(ValueError, match="cpuset controller is not available"):
        cgroup.apply(Resources(cpuset_cpus="0"))


def test_v2_needs_cpu_memory_and_pids(tmp_path: Path) -> None:
    root = make_v2_root(tmp_path / "cgroup", controllers="cpuset io memory")
    with pytest.raises(CgroupUnavailableError, match="lacks the controllers cpu, pids"):
        open_driver("cgroupfs-v2", root=root)


def test_v2_limit_the_kernel_refuses_names_file_and_value(v2_root: Path) -> None:
    cgroup = open_driver("cgroupfs-v2", root=v2_root).create("web", Resources())
    (v2_root / "ctr" / "web" / "pids.max").unlink()  # the kernel says ENOENT: same path
    with pytest.raises(CgroupWriteError, match=r"cannot write '12' to .*/web/pids\.max") as error:
        cgroup.apply(Resources(pids_max=12))
    assert error.value.value == "12"
    assert error.value.path == v2_root / "ctr" / "web" / "pids.max"


def test_v2_stats_reads_every_field(v2_root: Path) -> None:
    cgroup = open_driver("cgroupfs-v2", root=v2_root).create("web", EVERYTHING)
    web = v2_root / "ctr" / "web"
    _fill(web, {"cpu.stat": V2_CPU_STAT, "memory.stat": V2_MEMORY_STAT,
                "memory.current": "32210944\n", "memory.events": V2_MEMORY_EVENTS,
                "pids.current": "7\n"})
    stats = cgroup.stats()
    assert stats.cpu_usage_seconds == pytest.approx(2.345678)
    assert stats.cpu_user_seconds == pytest.approx(1.5)
    assert stats.cpu_system_seconds == pytest.approx(0.845678)
    assert (stats.cpu_periods, stats.cpu_throttled_periods) == (420, 37)
    assert (stats.cpu_quota_us, stats.cpu_period_us) == (50000, 100000)
    assert stats.memory_usage_bytes == 32210944
    assert stats.memory_working_set_bytes == 32210944 - 14626816
    assert (stats.memory_rss, stats.memory_cache) == (10584064, 20082688)
    assert stats.memory_limit_bytes == 256 << 20
    assert stats.oom_kills == 2
    assert stats.pids_current == 7


def test_v2_stats_of_an_unlimited_cgroup(v2_root: Path) -> None:
    cgroup = open_driver("cgroupfs-v2", root=v2_root).create("web", Resources())
    _fill(v2_root / "ctr" / "web", {"memory.current": "4096\n",
                                    "memory.stat": "anon 0\nfile 8192\ninactive_file 8192\n"})
    stats = cgroup.stats()
    assert stats.memory_limit_bytes is None
    assert (stats.cpu_quota_us, stats.cpu_period_us) == (None, None)
    assert stats.memory_working_set_bytes == 0  # floored: inactive_file may exceed usage


def test_v2_freeze_waits_for_the_kernel_to_report_frozen(v2_root: Path) -> None:
    cgroup = open_driver("cgroupfs-v2", root=v2_root).create("web", Resources())
    web = v2_root / "ctr" / "web"
    with pytest.raises(TimeoutError, match="freeze"):
        cgroup.freeze(timeout=0.05)
    assert read(web / "cgroup.freeze") == "0"  # a freeze that did not happen is undone

    (web / "cgroup.events").write_text("populated 1\nfrozen 1\n")
    cgroup.freeze()
    assert read(web / "cgroup.freeze") == "1"
    assert cgroup.frozen()
    cgroup.thaw()
    assert read(web / "cgroup.freeze") == "0"


def test_v2_pids_populated_and_kill(v2_root: Path, sleeper: subprocess.Popen[bytes]) -> None:
    cgroup = open_driver("cgroupfs-v2", root=v2_root).create("web", Resources())
    web = v2_root / "ctr" / "web"
    assert not cgroup.populated() and cgroup.pids() == []
    cgroup.add_process(sleeper.pid)
    (web / "cgroup.events").write_text("populated 1\nfrozen 0\n")
    assert cgroup.pids() == [sleeper.pid]
    assert cgroup.populated()

    cgroup.kill(signal.SIGTERM)
    assert sleeper.wait(timeout=5) == -signal.SIGTERM
    cgroup.kill()
    assert read(web / "cgroup.kill") == "1"


def test_v2_destroy_waits_for_the_last_process(v2_root: Path) -> None:
    driver = open_driver("cgroupfs-v2", root=v2_root)
    cgroup = driver.create("web", Resources())
    sibling = driver.create("db", Resources())
    web = v2_root / "ctr" / "web"
    (web / "cgroup.events").write_text("populated 1\nfrozen 0\n")
    with pytest.raises(TimeoutError, match="processes of web"):
        cgroup.destroy(timeout=0.1)
    assert read(web / "cgroup.kill") == "1"
    assert web.is_dir()  # never removed while processes are in it

    (web / "cgroup.events").write_text("populated 0\nfrozen 0\n")
    cgroup.destroy()
    assert not web.exists()
    assert (v2_root / "ctr").is_dir()  # the parent is shared with other containers
    cgroup.destroy()  # idempotent
    sibling.destroy()
    assert not (v2_root / "ctr").exists()  # the last one out removes the parent
    assert driver.create("web", Resources()).directories() == [web]  # made again on demand


def test_v2_open_list_and_names(v2_root: Path) -> None:
    driver = open_driver("cgroupfs-v2", root=v2_root)
    assert driver.list() == []
    driver.create("web", Resources())
    driver.create("db-1", Resources())
    assert driver.list() == ["db-1", "web"]
    assert driver.open("web").procs_paths() == [v2_root / "ctr" / "web" / "cgroup.procs"]
    with pytest.raises(FileNotFoundError, match="'cache'"):
        driver.open("cache")
    with pytest.raises(FileExistsError):
        driver.create("web", Resources())
    assert (v2_root / "ctr" / "web").is_dir()
    for bad in ("", "..", "../web", "a/b", ".hidden", "x" * 129):
        with pytest.raises(ValueError, match="invalid cgroup name"):
            driver.create(bad, Resources())
    with pytest.raises(ValueError, match="invalid parent"):
        open_driver("cgroupfs-v2", root=v2_root, parent="../etc")


# --- cgroup v1 -------------------------------------------------------------------------------

def test_v1_create_makes_the_cgroup_in_every_hierarchy(v1_root: Path) -> None:
    cgroup = open_driver("cgroupfs-v1", root=v1_root).create("web", EVERYTHING)
    dirs = [v1_root / c / "ctr" / "web" for c in V1_CONTROLLERS]
    assert cgroup.directories() == dirs
    assert cgroup.procs_paths() == [d / "cgroup.procs" for d in dirs]
    memory, cpu, _, cpuset, pids, _, _ = dirs
    assert read(memory / "memory.limit_in_bytes") == str(256 << 20)
    assert read(memory / "memory.memsw.limit_in_bytes") == str(256 << 20)
    assert read(cpu / "cpu.cfs_period_us") == "100000"
    assert read(cpu / "cpu.cfs_quota_us") == "50000"
    assert read(cpu / "cpu.shares") == "2048"
    assert read(cpuset / "cpuset.cpus") == "0-1"
    assert read(cpuset / "cpuset.mems") == "0"
    assert read(pids / "pids.max") == "64"


def test_v1_cpuset_is_copied_from_the_parent(v1_root: Path) -> None:
    open_driver("cgroupfs-v1", root=v1_root).create("web", Resources())
    for level in (v1_root / "cpuset" / "ctr", v1_root / "cpuset" / "ctr" / "web"):
        assert read(level / "cpuset.cpus") == "0-3"
        assert read(level / "cpuset.mems") == "0"


@pytest.mark.parametrize(("weight", "shares"), [
    (1, 10), (50, 512), (100, 1024), (200, 2048), (10000, 102400),
])
def test_v1_cpu_weight_becomes_shares_as_systemd_converts(
    v1_root: Path, weight: int, shares: int
) -> None:
    open_driver("cgroupfs-v1", root=v1_root).create("web", Resources(cpu_weight=weight))
    assert read(v1_root / "cpu" / "ctr" / "web" / "cpu.shares") == str(shares)


def test_cpu_shares_are_clamped_to_the_kernel_range() -> None:
    assert cpu_shares(0) == 2
    assert cpu_shares(1_000_000) == 262144


def test_v1_apply_changes_only_the_limits_given(v1_root: Path) -> None:
    cgroup = open_driver("cgroupfs-v1", root=v1_root).create("web", EVERYTHING)
    cgroup.apply(Resources(memory_max=512 << 20, cpu_quota=2))
    assert read(v1_root / "memory" / "ctr" / "web" / "memory.limit_in_bytes") == str(512 << 20)
    assert read(v1_root / "memory" / "ctr" / "web" / "memory.memsw.limit_in_bytes") == \
        str(512 << 20)
    assert read(v1_root / "cpu" / "ctr" / "web" / "cpu.cfs_quota_us") == "200000"
    assert read(v1_root / "cpu" / "ctr" / "web" / "cpu.shares") == "2048"
    assert read(v1_root / "pids" / "ctr" / "web" / "pids.max") == "64"


def test_v1_memory_limit_without_swap_accounting(tmp_path: Path,
                                                 fake_fs: Callable[..., Path]) -> None:
    root = fake_fs(make_v1_root(tmp_path / "cgroup"), swap=False)
    open_driver("cgroupfs-v1", root=root).create("web", Resources(memory_max=64 << 20))
    memory = root / "memory" / "ctr" / "web"
    assert read(memory / "memory.limit_in_bytes") == str(64 << 20)
    assert not (memory / "memory.memsw.limit_in_bytes").exists()


def test_v1_cpuset_outside_the_parent_is_refused_and_nothing_is_left(v1_root: Path) -> None:
    driver = open_driver("cgroupfs-v1", root=v1_root)
    with pytest.raises(ValueError, match=r"'99' to .*/cpuset/ctr/web/cpuset\.cpus.*'0-3'"):
        driver.create("web", Resources(cpuset_cpus="99"))
    assert [c for c in V1_CONTROLLERS if (v1_root / c / "ctr" / "web").exists()] == []
    assert driver.list() == []


def test_v1_create_over_a_leftover_removes_only_what_it_made(v1_root: Path) -> None:
    driver = open_driver("cgroupfs-v1", root=v1_root)
    driver.create("other", Resources())
    (v1_root / "pids" / "ctr" / "web").mkdir()  # left over from a crash, in one hierarchy
    with pytest.raises(FileExistsError, match="pids/ctr/web"):
        driver.create("web", Resources())
    assert [c for c in V1_CONTROLLERS if (v1_root / c / "ctr" / "web").exists()] == ["pids"]
    assert driver.list() == ["other", "web"]  # listed, so ctrd can clean it up
    driver.open("web").destroy()
    assert driver.list() == ["other"]


@pytest.mark.parametrize("symlinks", [True, False])
def test_v1_cpu_and_cpuacct_sharing_one_mount(tmp_path: Path, fake_fs: Callable[..., Path],
                                              symlinks: bool) -> None:
    root = make_v1_root(tmp_path / "cgroup",
                        hierarchies=("memory", "cpu,cpuacct", "cpuset", "pids", "freezer",
                                     "devices"))
    if symlinks:  # as systemd mounts it
        (root / "cpu").symlink_to("cpu,cpuacct")
        (root / "cpuacct").symlink_to("cpu,cpuacct")
    fake_fs(root)
    cgroup = open_driver("auto", root=root).create("web", Resources(cpu_quota=1))
    shared = (root / "cpu,cpuacct" / "ctr" / "web").resolve()
    assert [d for d in cgroup.directories() if "cpu," in d.as_posix()] == [shared]
    assert len(cgroup.procs_paths()) == 6
    assert read(shared / "cpu.cfs_quota_us") == "100000"
    _fill(shared, {"cpuacct.usage": "1500000000\n"})
    assert cgroup.stats().cpu_usage_seconds == pytest.approx(1.5)


def test_v1_stats_reads_every_field(v1_root: Path) -> None:
    cgroup = open_driver("cgroupfs-v1", root=v1_root).create(
        "web", Resources(memory_max=128 << 20, cpu_quota=1.5))
    web = {c: v1_root / c / "ctr" / "web" for c in V1_CONTROLLERS}
    _fill(web["cpuacct"], {"cpuacct.usage": "3141592653\n", "cpuacct.stat": V1_CPUACCT_STAT})
    _fill(web["cpu"], {"cpu.stat": V1_CPU_STAT})
    _fill(web["memory"], {"memory.usage_in_bytes": "52428800\n", "memory.stat": V1_MEMORY_STAT,
                          "memory.oom_control": V1_OOM_CONTROL})
    _fill(web["pids"], {"pids.current": "5\n"})
    ticks = os.sysconf("SC_CLK_TCK")

    stats = cgroup.stats()
    assert stats.cpu_usage_seconds == pytest.approx(3.141592653)
    assert stats.cpu_user_seconds == pytest.approx(250 / ticks)
    assert stats.cpu_system_seconds == pytest.approx(64 / ticks)
    assert (stats.cpu_periods, stats.cpu_throttled_periods) == (512, 128)
    assert (stats.cpu_quota_us, stats.cpu_period_us) == (150000, 100000)
    assert stats.memory_usage_bytes == 52428800
    assert stats.memory_working_set_bytes == 52428800 - 6291456
    assert (stats.memory_rss, stats.memory_cache) == (41943040, 8388608)
    assert stats.memory_limit_bytes == 128 << 20
    assert stats.oom_kills == 3
    assert stats.pids_current == 5


def test_v1_stats_of_an_unlimited_cgroup(v1_root: Path) -> None:
    stats = open_driver("cgroupfs-v1", root=v1_root).create("web", Resources()).stats()
    assert stats.memory_limit_bytes is None
    assert (stats.cpu_quota_us, stats.cpu_period_us) == (None, None)


def test_v1_device_rules_go_to_the_devices_controller(v1_root: Path) -> None:
    open_driver("cgroupfs-v1", root=v1_root).create("web", Resources(), (DeviceRule("c", 1, 3),))
    devices = v1_root / "devices" / "ctr" / "web"
    assert read(devices / "devices.deny") == "a"  # the list emptied first
    assert read(devices / "devices.allow") == "c 1:3 rwm"  # then each rule (the last here)


def test_v2_device_rules_become_a_program_on_the_cgroup(
        v2_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    attached: list[tuple[Path, bytes]] = []
    monkeypatch.setattr(v2_devices, "attach", lambda path, code: attached.append((path, code)))
    rules = (DeviceRule("c", access="m"), DeviceRule("c", 1, 3))
    driver = open_driver("cgroupfs-v2", root=v2_root)
    driver.create("web", Resources(), rules)
    driver.create("admin", Resources(), None)
    assert attached == [(v2_root / "ctr" / "web", v2_devices.program(rules))]


def test_v1_freezer_state(v1_root: Path) -> None:
    cgroup = open_driver("cgroupfs-v1", root=v1_root).create("web", Resources())
    state = v1_root / "freezer" / "ctr" / "web" / "freezer.state"
    assert not cgroup.frozen()
    cgroup.freeze()
    assert read(state) == "FROZEN" and cgroup.frozen()
    cgroup.thaw()
    assert read(state) == "THAWED" and not cgroup.frozen()


def test_v1_without_unified_tracks_processes_in_the_freezer_hierarchy(
    v1_root: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    cgroup = open_driver("cgroupfs-v1", root=v1_root).create("web", Resources())
    assert not cgroup.populated()
    cgroup.add_process(sleeper.pid)
    assert cgroup.pids() == [sleeper.pid] and cgroup.populated()
    cgroup.kill()  # no cgroup.kill: SIGKILL to each process while frozen, then thaw
    assert sleeper.wait(timeout=5) == -signal.SIGKILL
    assert read(v1_root / "freezer" / "ctr" / "web" / "freezer.state") == "THAWED"

    for directory in cgroup.directories():
        (directory / "cgroup.procs").write_text("")  # what the kernel shows once it exited
    cgroup.destroy()
    assert [c for c in V1_CONTROLLERS if (v1_root / c / "ctr" / "web").exists()] == []
    cgroup.destroy()


def test_v1_hybrid_host_also_uses_the_unified_hierarchy(
    tmp_path: Path, fake_fs: Callable[..., Path]
) -> None:
    root = fake_fs(make_v1_root(tmp_path / "cgroup", unified=True))
    cgroup = open_driver("auto", root=root).create("web", Resources())
    unified = root / "unified" / "ctr" / "web"
    assert cgroup.directories()[-1] == unified
    assert unified / "cgroup.procs" in cgroup.procs_paths()

    (unified / "cgroup.procs").write_text("4242\n4243\n")
    (unified / "cgroup.events").write_text("populated 1\nfrozen 0\n")
    assert cgroup.pids() == [4242, 4243] and cgroup.populated()
    cgroup.kill()
    assert read(unified / "cgroup.kill") == "1"
    assert read(root / "freezer" / "ctr" / "web" / "freezer.state") == "THAWED"

    (unified / "cgroup.events").write_text("populated 0\nfrozen 0\n")
    cgroup.destroy()
    assert not unified.exists() and not (root / "memory" / "ctr" / "web").exists()


def test_v1_needs_every_hierarchy(tmp_path: Path) -> None:
    root = make_v1_root(tmp_path / "cgroup", hierarchies=("memory", "cpu", "cpuacct", "cpuset"))
    with pytest.raises(CgroupUnavailableError,
                       match=r"not mounted under .*: pids, freezer, devices"):
        open_driver("auto", root=root)


# --- detection -------------------------------------------------------------------------------

def test_detect_pure_v2(tmp_path: Path) -> None:
    root = make_v2_root(tmp_path / "cgroup")
    assert detect(root) == "cgroupfs-v2"
    assert open_driver(root=root).name == "cgroupfs-v2"
    assert open_driver("cgroupfs", root=root).name == "cgroupfs-v2"


def test_detect_v1(tmp_path: Path) -> None:
    root = make_v1_root(tmp_path / "cgroup")
    assert detect(root) == "cgroupfs-v1"
    assert open_driver(root=root).name == "cgroupfs-v1"


def test_detect_hybrid_is_v1_with_unified(tmp_path: Path) -> None:
    root = make_v1_root(tmp_path / "cgroup", unified=True)
    assert detect(root) == "cgroupfs-v1"
    driver = open_driver(root=root)
    assert isinstance(driver, V1Driver)
    assert driver.hierarchies.unified == root / "unified"


def test_detect_nothing_usable(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CgroupUnavailableError, match="no cgroup controllers under"):
        open_driver(root=empty)
    controllerless = make_v2_root(tmp_path / "v2", controllers="")
    with pytest.raises(CgroupUnavailableError):
        detect(controllerless)


def test_unknown_driver_kind(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown cgroup driver 'lxc'"):
        open_driver("lxc", root=tmp_path)
