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

from supervisor.model.spec import DeviceRule, Resources
from supervisor.model.units import CpuSet
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
from tests.fake_cgroupfs import (
    EVERYTHING,
    V1_CONTROLLERS,
    V1_CPU_STAT,
    V1_CPUACCT_STAT,
    V1_MEMORY_STAT,
    V1_OOM_CONTROL,
    V2_CPU_STAT,
    V2_MEMORY_EVENTS,
    V2_MEMORY_STAT,
    FakeCgroupFs,
    make_v1_root,
    make_v2_root,
    write_files,
)


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
        assert read(level / "cgroup.subtree_control") == "+cpu +cpuset +io +memory +pids"
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
        assert read(level / "cgroup.subtree_control") == "+cpu +cpuset +io +memory +pids"
    assert (v2_root / "ctr.slice" / "pool" / "web" / "cpu.max").exists()


def test_v2_cpuset_outside_the_parent_is_refused_and_nothing_is_left(v2_root: Path) -> None:
    driver = open_driver("cgroupfs-v2", root=v2_root)
    with pytest.raises(ValueError, match=r"'99' to .*/ctr/web/cpuset\.cpus.*CPU 99"):
        driver.create("web", Resources(cpuset_cpus=CpuSet.of("99")))
    assert not (v2_root / "ctr" / "web").exists()
    assert driver.list() == []


def test_v2_host_without_cpuset_or_swap(tmp_path: Path, fake_fs: Callable[..., Path]) -> None:
    root = fake_fs(make_v2_root(tmp_path / "cgroup", controllers="cpu io memory pids"), swap=False)
    driver = open_driver("auto", root=root)
    cgroup = driver.create("web", Resources(memory_max=1 << 20))
    assert read(root / "ctr" / "cgroup.subtree_control") == "+cpu +io +memory +pids"
    assert read(root / "ctr" / "web" / "memory.max") == str(1 << 20)
    assert not (root / "ctr" / "web" / "memory.swap.max").exists()
    with pytest.raises(ValueError, match="cpuset controller is not available"):
        cgroup.apply(Resources(cpuset_cpus=CpuSet.of("0")))


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
    write_files(web, {"cpu.stat": V2_CPU_STAT, "memory.stat": V2_MEMORY_STAT,
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
    assert stats.oom_kills == cgroup.oom_kills() == 2
    assert stats.pids_current == 7


def test_v2_stats_of_an_unlimited_cgroup(v2_root: Path) -> None:
    cgroup = open_driver("cgroupfs-v2", root=v2_root).create("web", Resources())
    write_files(v2_root / "ctr" / "web", {"memory.current": "4096\n",
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
    assert cgroup.destroyed_at_once()
    (web / "cgroup.events").write_text("populated 1\nfrozen 0\n")
    assert not cgroup.destroyed_at_once()  # ctrd runs this destroy off its loop
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
    for bad in ("", ".", "..", "../web", "a/b", "x" * 256):
        with pytest.raises(ValueError, match="invalid cgroup name"):
            driver.create(bad, Resources())
    oci = "libpod-" + "0" * 64  # an OCI bundle's cgroupsPath ends in such a name (podman's)
    driver.create(oci, Resources())
    assert driver.open(oci).directories() == [v2_root / "ctr" / oci]
    with pytest.raises(ValueError, match="invalid parent"):
        open_driver("cgroupfs-v2", root=v2_root, parent="../etc")


# --- cgroup v1 -------------------------------------------------------------------------------

def test_v1_create_makes_the_cgroup_in_every_hierarchy(v1_root: Path) -> None:
    cgroup = open_driver("cgroupfs-v1", root=v1_root).create("web", EVERYTHING)
    dirs = [v1_root / c / "ctr" / "web" for c in V1_CONTROLLERS]
    assert cgroup.directories() == dirs
    assert cgroup.procs_paths() == [d / "cgroup.procs" for d in dirs]
    memory, cpu, _, cpuset, pids, _, _, _ = dirs
    assert read(memory / "memory.limit_in_bytes") == str(256 << 20)
    assert read(memory / "memory.memsw.limit_in_bytes") == str(256 << 20)
    assert read(cpu / "cpu.cfs_period_us") == "100000"
    assert read(cpu / "cpu.cfs_quota_us") == "50000"
    assert read(cpu / "cpu.shares") == "2048"
    assert read(cpuset / "cpuset.cpus") == "0-1"
    assert read(cpuset / "cpuset.mems") == "0"
    assert read(pids / "pids.max") == "64"


def test_v1_cpu_quota_writes_the_period_only_where_it_is_not_the_default(
        v1_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each write of a CFS file makes the kernel check every cpu cgroup's bandwidth."""
    cgroup = open_driver("cgroupfs-v1", root=v1_root).create("web", Resources())
    cpu = v1_root / "cpu" / "ctr" / "web"
    written: list[str] = []
    write = files.write

    def recorded(path: Path, value: str | int) -> None:
        written.append(path.name)
        write(path, value)

    monkeypatch.setattr(files, "write", recorded)
    cgroup.apply(Resources(cpu_quota=0.5))  # a new cgroup: the kernel's default period
    assert written == ["cpu.cfs_quota_us"]
    assert (read(cpu / "cpu.cfs_period_us"), read(cpu / "cpu.cfs_quota_us")) == ("100000", "50000")
    (cpu / "cpu.cfs_period_us").write_text("250000\n")  # set by someone else
    written.clear()
    cgroup.apply(Resources(cpu_quota=1.5))
    assert written == ["cpu.cfs_period_us", "cpu.cfs_quota_us"]
    assert (read(cpu / "cpu.cfs_period_us"), read(cpu / "cpu.cfs_quota_us")) == ("100000", "150000")


def test_v1_cpuset_is_copied_from_the_parent(v1_root: Path) -> None:
    open_driver("cgroupfs-v1", root=v1_root).create("web", Resources())
    for level in (v1_root / "cpuset" / "ctr", v1_root / "cpuset" / "ctr" / "web"):
        assert read(level / "cpuset.cpus") == "0-3"
        assert read(level / "cpuset.mems") == "0"
    # the kernel copies them into the parent's new children itself (a write checks siblings)
    assert read(v1_root / "cpuset" / "ctr" / "cgroup.clone_children") == "1"
    assert read(v1_root / "cpuset" / "cgroup.clone_children") == "0"  # not ctr's: left alone


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
        driver.create("web", Resources(cpuset_cpus=CpuSet.of("99")))
    assert driver.list() == []
    assert [c for c in V1_CONTROLLERS if (v1_root / c / "ctr").exists()] == []  # nor ctr's


@pytest.mark.parametrize("kind", ["cgroupfs-v1", "cgroupfs-v2"])
def test_creates_beside_destroys_of_the_parents_last_child_in_other_processes(
        tmp_path: Path, fake_fs: Callable[..., Path], kind: str) -> None:
    """Each process makes and removes a container of its own under the shared parent; each
    destroy of the parent's last child removes the parent, which must not happen between
    another's making it and making its child there."""
    root = fake_fs((make_v1_root if kind == "cgroupfs-v1" else make_v2_root)(tmp_path / "cg"))
    children = []
    for worker in range(3):
        pid = os.fork()
        if pid == 0:
            status = 0
            try:
                driver = open_driver(kind, root=root)
                for _ in range(100):
                    driver.create(f"w{worker}", Resources()).destroy()
            except BaseException as exc:
                print(f"w{worker}: {type(exc).__name__}: {exc}")
                status = 1
            finally:
                os._exit(status)
        children.append(pid)
    assert [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in children] == [0] * 3
    assert not list(root.glob("**/ctr"))  # the last destroy removed the parent everywhere


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
    write_files(shared, {"cpuacct.usage": "1500000000\n"})
    assert cgroup.stats().cpu_usage_seconds == pytest.approx(1.5)


def test_v1_stats_reads_every_field(v1_root: Path) -> None:
    cgroup = open_driver("cgroupfs-v1", root=v1_root).create(
        "web", Resources(memory_max=128 << 20, cpu_quota=1.5))
    web = {c: v1_root / c / "ctr" / "web" for c in V1_CONTROLLERS}
    write_files(web["cpuacct"], {"cpuacct.usage": "3141592653\n",
                                 "cpuacct.stat": V1_CPUACCT_STAT})
    write_files(web["cpu"], {"cpu.stat": V1_CPU_STAT})
    write_files(web["memory"], {"memory.usage_in_bytes": "52428800\n",
                                "memory.stat": V1_MEMORY_STAT,
                                "memory.oom_control": V1_OOM_CONTROL})
    write_files(web["pids"], {"pids.current": "5\n"})
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
    assert stats.oom_kills == cgroup.oom_kills() == 3
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
