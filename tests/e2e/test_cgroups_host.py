"""The cgroup layer against this host's kernel: cgroup v1 with a cgroup2 ``unified``, via "auto".

Every test works under a parent cgroup of its own (``ctr-test-*``), and the ``lab`` fixture
destroys every cgroup and kills every process the test made, even when the test fails.
"""

from __future__ import annotations

import errno
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from supervisor.model.spec import DeviceRule, Resources
from supervisor.model.units import CpuSet
from supervisor.runtime.cgroups import Cgroup, CgroupWriteError, detect, files, open_driver
from supervisor.runtime.cgroups.v2.driver import V2Cgroup

ROOT = Path("/sys/fs/cgroup")
NO_LIMITS = Resources()
V1_CONTROLLERS = ("memory", "cpu", "cpuacct", "cpuset", "pids", "freezer", "devices")

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or detect() != "cgroupfs-v1", reason="needs root on a cgroup v1/hybrid host"
)


class Lab:
    """A cgroup driver under a parent cgroup of the test's own, and the processes it started."""

    def __init__(self, root: Path = ROOT) -> None:
        self.parent = f"ctr-test-{os.getpid()}-{secrets.token_hex(3)}"
        self.driver = open_driver("auto", root=root, parent=self.parent)
        self.processes: list[subprocess.Popen[str]] = []

    def create(self, resources: Resources = NO_LIMITS, name: str = "web") -> Cgroup:
        return self.driver.create(name, resources)

    def start(self, cgroup: Cgroup | None, *argv: str) -> subprocess.Popen[str]:
        """Run ``argv``; in ``cgroup`` it joins right after fork, as a container's child does."""
        paths = [str(path) for path in cgroup.procs_paths()] if cgroup else []

        def join() -> None:
            for path in paths:
                with open(path, "w") as procs:
                    procs.write("0")

        process = subprocess.Popen(argv, preexec_fn=join, stdout=subprocess.PIPE, text=True)
        self.processes.append(process)
        return process

    def python(self, cgroup: Cgroup, code: str) -> subprocess.Popen[str]:
        return self.start(cgroup, sys.executable, "-c", code)

    def close(self) -> None:
        """Remove everything the test made, also when the code under test failed to."""
        try:
            for name in self.driver.list():
                self.driver.open(name).destroy()
        finally:
            freezer = ROOT / "freezer" / self.parent
            files.signal_all(files.procs(freezer), signal.SIGKILL)
            for state in freezer.rglob("freezer.state"):  # frozen processes die once thawed
                state.write_text("THAWED")
            for process in self.processes:
                process.kill()
                process.wait(timeout=5)
            for directory in ROOT.glob(f"*/{self.parent}"):
                files.remove_tree(directory, time.monotonic() + 5)


@pytest.fixture
def lab() -> Iterator[Lab]:
    lab = Lab()
    try:
        yield lab
    finally:
        lab.close()


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    files.wait_until(condition, time.monotonic() + timeout, "the test's condition")


def proc_status(pid: int, field: str) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return line.split(":", 1)[1].strip()
    raise KeyError(field)


def gone(pid: int) -> bool:
    """Exited: no such process, or a zombie waiting for its parent."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in "ZX"
    except FileNotFoundError:
        return True


def test_child_joins_every_hierarchy_right_after_fork(lab: Lab) -> None:
    cgroup = lab.create()
    sleeper = lab.start(cgroup, "sleep", "60")
    wait_for(lambda: cgroup.pids() == [sleeper.pid])

    membership = dict(line.split(":", 2)[1:] for line in
                      Path(f"/proc/{sleeper.pid}/cgroup").read_text().splitlines())
    for controller in V1_CONTROLLERS:
        assert membership[controller] == f"/{lab.parent}/web"
    assert membership[""] == f"/{lab.parent}/web"  # the cgroup2 hierarchy of a hybrid host
    assert cgroup.populated()
    stats = cgroup.stats()
    assert stats.pids_current == 1
    assert stats.memory_usage_bytes > 0

    outsider = lab.start(None, "sleep", "60")
    cgroup.add_process(outsider.pid)
    assert cgroup.pids() == sorted([sleeper.pid, outsider.pid])

    assert lab.driver.list() == ["web"]
    assert lab.driver.open("web").pids() == cgroup.pids()  # as a restarted ctrd finds it


@pytest.mark.parametrize(("rules", "listed"), [
    ((DeviceRule("c", access="m"), DeviceRule("c", 1, 3), DeviceRule("b", 7, 4, "r")),
     ["c *:* m", "c 1:3 rwm", "b 7:4 r"]),
    (None, ["a *:* rwm"]),  # privileged: the parent's list, every device
])
def test_device_list_is_exactly_the_rules(lab: Lab, rules: tuple[DeviceRule, ...] | None,
                                          listed: list[str]) -> None:
    lab.driver.create("web", NO_LIMITS, rules)
    devices = ROOT / "devices" / lab.parent / "web" / "devices.list"
    assert devices.read_text().split("\n")[:-1] == listed


def test_memory_hog_is_oom_killed_at_memory_max(lab: Lab) -> None:
    cgroup = lab.create(Resources(memory_max=32 << 20))
    hog = lab.python(cgroup, "chunks = []\nwhile True: chunks.append(b'x' * (1 << 20))")
    assert hog.wait(timeout=10) == -signal.SIGKILL
    stats = cgroup.stats()
    assert stats.oom_kills >= 1
    assert stats.memory_limit_bytes == 32 << 20


def test_pids_max_stops_forks(lab: Lab) -> None:
    cgroup = lab.create(Resources(pids_max=4))
    forker = lab.python(cgroup, """
import os, signal
children = []
try:
    while len(children) < 10:
        pid = os.fork()
        if pid == 0:
            signal.pause()
        children.append(pid)
except BlockingIOError:
    print("refused after", len(children), flush=True)
for pid in children:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
""")
    out, _ = forker.communicate(timeout=10)
    assert out.strip() == "refused after 3"  # itself and 3 children make 4


def test_cpu_quota_throttles_and_shows_in_stats(lab: Lab) -> None:
    cgroup = lab.create(Resources(cpu_quota=0.2))
    busy = lab.python(cgroup, "import time\nend = time.monotonic() + 1\n"
                              "while time.monotonic() < end: pass")
    assert busy.wait(timeout=10) == 0
    stats = cgroup.stats()
    assert (stats.cpu_quota_us, stats.cpu_period_us) == (20000, 100000)
    assert stats.cpu_throttled_periods > 0
    assert stats.cpu_periods >= stats.cpu_throttled_periods
    assert 0.1 < stats.cpu_usage_seconds < 0.45  # 1 s of busy loop at a fifth of a CPU
    assert stats.cpu_user_seconds > 0


def test_cpuset_pins_the_processes(lab: Lab) -> None:
    cpus = list(CpuSet.of(files.read(ROOT / "cpuset" / "cpuset.effective_cpus")))
    first, last = str(cpus[0]), str(cpus[-1])
    cgroup = lab.create(Resources(cpuset_cpus=CpuSet.of(last)))
    sleeper = lab.start(cgroup, "sleep", "60")
    wait_for(lambda: proc_status(sleeper.pid, "Cpus_allowed_list") == last)
    cgroup.apply(Resources(cpuset_cpus=CpuSet.of(first)))
    assert proc_status(sleeper.pid, "Cpus_allowed_list") == first


def test_cpuset_the_host_lacks_is_refused_and_nothing_is_left(lab: Lab) -> None:
    with pytest.raises(ValueError, match=r"cannot write '99' to .*/cpuset\.cpus"):
        lab.create(Resources(cpuset_cpus=CpuSet.of("99")))
    assert list(ROOT.glob(f"*/{lab.parent}/web")) == []


def test_live_apply_changes_the_files(lab: Lab) -> None:
    cgroup = lab.create(Resources(memory_max=64 << 20, cpu_quota=0.5, cpu_weight=100, pids_max=10))
    sleeper = lab.start(cgroup, "sleep", "60")
    web = {c: ROOT / c / lab.parent / "web" for c in V1_CONTROLLERS}

    def memory() -> tuple[int, int]:
        return (files.read_int(web["memory"] / "memory.limit_in_bytes"),
                files.read_int(web["memory"] / "memory.memsw.limit_in_bytes"))

    # Growing and shrinking both work only if memory+swap is written in the right order.
    cgroup.apply(Resources(memory_max=128 << 20))
    assert memory() == (128 << 20, 128 << 20)
    cgroup.apply(Resources(memory_max=48 << 20))
    assert memory() == (48 << 20, 48 << 20)

    cgroup.apply(Resources(cpu_quota=1.5, cpu_weight=200, pids_max=20))
    assert files.read(web["cpu"] / "cpu.cfs_quota_us") == "150000"
    assert files.read(web["cpu"] / "cpu.shares") == "2048"
    assert files.read(web["pids"] / "pids.max") == "20"
    assert memory() == (48 << 20, 48 << 20)  # untouched by an update without memory_max
    assert cgroup.stats().cpu_quota_us == 150000
    assert cgroup.pids() == [sleeper.pid]


def test_a_limit_the_kernel_refuses_names_file_and_value(lab: Lab) -> None:
    cgroup = lab.create(Resources(memory_max=256 << 20))
    holder = lab.python(cgroup, "import time\nb = b'x' * (64 << 20)\nprint('ready', flush=True)\n"
                                "time.sleep(60)")
    assert holder.stdout and holder.stdout.readline() == "ready\n"
    with pytest.raises(CgroupWriteError, match=r"'1048576' to .*/memory\.limit_in_bytes") as error:
        cgroup.apply(Resources(memory_max=1 << 20))  # 64 MiB in use and no swap: EBUSY
    assert error.value.errno == errno.EBUSY
    assert cgroup.stats().memory_limit_bytes == 256 << 20
    assert holder.poll() is None


def test_freeze_stops_the_processes_and_thaw_resumes_them(lab: Lab) -> None:
    cgroup = lab.create()
    busy = lab.python(cgroup, "while True: pass")
    wait_for(lambda: cgroup.stats().cpu_usage_seconds > 0.05)

    cgroup.freeze()
    assert cgroup.frozen()
    before = cgroup.stats().cpu_usage_seconds
    time.sleep(0.3)
    assert cgroup.stats().cpu_usage_seconds == before

    cgroup.thaw()
    assert not cgroup.frozen()
    time.sleep(0.3)
    assert cgroup.stats().cpu_usage_seconds > before + 0.1
    assert busy.poll() is None


def test_destroy_removes_every_directory_even_while_frozen(lab: Lab) -> None:
    cgroup = lab.create(Resources(memory_max=64 << 20))
    shell = lab.start(cgroup, "sh", "-c", "sleep 60 & sleep 60 & wait")
    wait_for(lambda: len(cgroup.pids()) == 3)
    pids = cgroup.pids()
    cgroup.freeze()

    cgroup.destroy()
    assert [d for d in cgroup.directories() if d.exists()] == []
    assert shell.wait(timeout=5) == -signal.SIGKILL
    assert all(gone(pid) for pid in pids)
    assert lab.driver.list() == []
    cgroup.destroy()  # idempotent


FORKER = """
import os, time
while True:
    try:
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)
    except OSError:
        time.sleep(0.001)
"""


def test_destroy_kills_a_forking_tree_without_cgroup_kill(tmp_path: Path) -> None:
    """The same v1 hierarchies but no cgroup2 dir: destroy must freeze, kill and retry itself."""
    for controller in V1_CONTROLLERS:
        (tmp_path / controller).symlink_to(ROOT / controller)
    lab = Lab(root=tmp_path)
    try:
        cgroup = lab.create(Resources(pids_max=32))
        assert all(ROOT / "unified" not in d.parents for d in cgroup.directories())
        # Forks until killed: a shell would give up (exit 2) once pids_max refuses a fork.
        forker = lab.python(cgroup, FORKER)
        wait_for(lambda: len(cgroup.pids()) > 10)
        cgroup.destroy()
        assert [d for d in cgroup.directories() if d.exists()] == []
        assert forker.wait(timeout=5) == -signal.SIGKILL
    finally:
        lab.close()


def test_v2_cgroup_on_the_kernels_cgroup2(lab: Lab) -> None:
    """The v2 freezer, cgroup.kill and destroy against the real cgroup2 (controller-less here)."""
    parent = ROOT / "unified" / lab.parent
    parent.mkdir()
    (parent / "v2").mkdir()
    cgroup = V2Cgroup("v2", parent / "v2")
    busy = lab.start(cgroup, sys.executable, "-c", "while True: pass")
    wait_for(cgroup.populated)
    assert cgroup.pids() == [busy.pid]

    def usage() -> int:
        return files.read_keyed(cgroup.path / "cpu.stat")["usage_usec"]

    cgroup.freeze()
    assert cgroup.frozen()
    before = usage()
    time.sleep(0.2)
    assert usage() == before
    cgroup.thaw()
    wait_for(lambda: usage() > before)

    cgroup.freeze()
    cgroup.destroy()
    assert not cgroup.path.exists()
    assert busy.wait(timeout=5) == -signal.SIGKILL
