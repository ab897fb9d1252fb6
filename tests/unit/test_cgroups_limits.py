"""The IO, memory.high and swap limits, IO statistics, memory events and pressure, against fake
cgroup trees of both versions (tests/fake_cgroupfs.py), and as systemd properties.

Per-device files take one device a write, so what the kernel is told is checked write by write
(a plain file keeps only the last one).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from supervisor.model import iolimits
from supervisor.model import resources as limits
from supervisor.model.spec import DeviceLimit, Resources
from supervisor.runtime.cgroups import CgroupWriteError, files, open_driver
from supervisor.runtime.cgroups.base import DeviceIo, Pressure
from supervisor.runtime.cgroups.systemd import properties
from supervisor.runtime.cgroups.systemd.driver import SystemdDriver
from supervisor.runtime.cgroups.v2 import core
from tests.fake_cgroupfs import (
    CPU_PRESSURE,
    IO_PRESSURE,
    MEMORY_PRESSURE,
    V1_IO_SERVICE_BYTES,
    V1_IO_SERVICED,
    V1_OOM_CONTROL,
    V2_IO_STAT,
    V2_MEMORY_EVENTS,
    FakeCgroupFs,
    make_v1_root,
    make_v2_root,
    write_files,
)
from tests.unit.test_systemd_properties import FakeManager

VDA = DeviceLimit("/dev/vda", 254, 0, 10 << 20)
VDB = DeviceLimit("253:16", 253, 16, None)  # "max": the limit lifted
MIB = 1 << 20


@pytest.fixture
def fake_fs(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    def install(root: Path, swap: bool = True) -> Path:
        fake = FakeCgroupFs(root, swap=swap)
        monkeypatch.setattr(files, "make_dir", fake.make_dir)
        monkeypatch.setattr(files, "remove_dir", fake.remove_dir)
        return root
    return install


@pytest.fixture
def written(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, str]]]:
    """Every write to a cgroup file, as (file name, value), still written to the file."""
    log: list[tuple[str, str]] = []
    write = files.write

    def record(path: Path, value: str | int) -> None:
        log.append((path.name, str(value)))
        write(path, value)
    monkeypatch.setattr(files, "write", record)
    yield log


@pytest.fixture(autouse=True)
def pressure_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on a kernel with PSI, whatever the machine running the tests has."""
    monkeypatch.setattr(core, "host_has_pressure", lambda: True)


@pytest.fixture
def v2_root(tmp_path: Path, fake_fs: Callable[..., Path]) -> Path:
    return fake_fs(make_v2_root(tmp_path / "cgroup"))


@pytest.fixture
def v1_root(tmp_path: Path, fake_fs: Callable[..., Path]) -> Path:
    return fake_fs(make_v1_root(tmp_path / "cgroup", unified=True))


def read(path: Path) -> str:
    return path.read_text().strip()


# --- cgroup v2 -------------------------------------------------------------------------------

def test_v2_io_limits_are_one_io_max_write_per_device(v2_root: Path,
                                                      written: list[tuple[str, str]]) -> None:
    open_driver("cgroupfs-v2", root=v2_root).create("lim-io", Resources(
        io_read_bps=(VDA,), io_write_bps=(VDA, VDB), io_write_iops=(VDB,),
        io_read_iops=(DeviceLimit("/dev/vda", 254, 0, 500),)))
    assert [value for name, value in written if name == "io.max"] == [
        f"254:0 rbps={10 << 20} wbps={10 << 20} riops=500",
        "253:16 wbps=max wiops=max",
    ]


def test_v2_memory_high_and_swap(v2_root: Path) -> None:
    cgroup = open_driver("cgroupfs-v2", root=v2_root).create("lim-mem", Resources(
        memory_max=256 * MIB, memory_high=200 * MIB, memory_swap_max=64 * MIB))
    web = v2_root / "ctr" / "lim-mem"
    assert read(web / "memory.max") == str(256 * MIB)
    assert read(web / "memory.high") == str(200 * MIB)
    assert read(web / "memory.swap.max") == str(64 * MIB)
    cgroup.apply(Resources(memory_max=512 * MIB))  # the swap given before stays
    assert read(web / "memory.swap.max") == str(64 * MIB)
    assert read(web / "memory.max") == str(512 * MIB)


def test_v2_memory_max_alone_allows_no_swap(v2_root: Path) -> None:
    open_driver("cgroupfs-v2", root=v2_root).create("lim-mem", Resources(memory_max=MIB))
    assert read(v2_root / "ctr" / "lim-mem" / "memory.swap.max") == "0"


def test_v2_without_swap_accounting_a_swap_limit_is_an_error(
        tmp_path: Path, fake_fs: Callable[..., Path]) -> None:
    root = fake_fs(make_v2_root(tmp_path / "cgroup"), swap=False)
    with pytest.raises(ValueError, match=r"memory.swap.max is missing .*swapaccount=1"):
        open_driver("cgroupfs-v2", root=root).create("lim-mem", Resources(memory_swap_max=0))
    assert not (root / "ctr" / "lim-mem").exists()


def test_v2_without_the_io_controller_io_limits_are_an_error(
        tmp_path: Path, fake_fs: Callable[..., Path]) -> None:
    root = fake_fs(make_v2_root(tmp_path / "cgroup", controllers="cpu memory pids"))
    driver = open_driver("cgroupfs-v2", root=root)
    with pytest.raises(ValueError, match="the io controller is not enabled"):
        driver.create("lim-io", Resources(io_read_bps=(VDA,)))
    assert driver.create("lim-io", Resources()).stats().io == []  # no io.stat: no IO rows


def test_v2_a_device_the_kernel_refuses_names_file_and_value(v2_root: Path) -> None:
    cgroup = open_driver("cgroupfs-v2", root=v2_root).create("lim-io", Resources())
    io_max = v2_root / "ctr" / "lim-io" / "io.max"
    io_max.unlink()
    io_max.mkdir()  # any write fails, as the kernel's ENODEV for a device it lacks would
    with pytest.raises(CgroupWriteError, match=rf"cannot write '254:0 rbps=10485760' to {io_max}"):
        cgroup.apply(Resources(io_read_bps=(VDA,)))


def test_v2_stats_io_events_and_pressure(v2_root: Path) -> None:
    cgroup = open_driver("cgroupfs-v2", root=v2_root).create("lim-stats", Resources())
    write_files(v2_root / "ctr" / "lim-stats", {
        "io.stat": V2_IO_STAT, "memory.events": V2_MEMORY_EVENTS, "cpu.pressure": CPU_PRESSURE,
        "memory.pressure": MEMORY_PRESSURE, "io.pressure": IO_PRESSURE})
    stats = cgroup.stats()
    assert stats.io == [DeviceIo("254:0", 5242880, 10485760, 10, 20),
                        DeviceIo("253:0", 4096, 0, 1, 0)]
    assert stats.memory_events == {"low": 0, "high": 0, "max": 17, "oom": 2, "oom_kill": 2,
                                   "oom_group_kill": 0}
    assert stats.pressure == Pressure(cpu_waiting=2.5, cpu_stalled=0.125,
                                      memory_waiting=42e-6, memory_stalled=21e-6,
                                      io_waiting=7.0, io_stalled=5.0)


def test_v2_cpu_pressure_without_a_full_line(v2_root: Path) -> None:
    cgroup = open_driver("cgroupfs-v2", root=v2_root).create("lim-stats", Resources())
    write_files(v2_root / "ctr" / "lim-stats",
                {"cpu.pressure": CPU_PRESSURE.splitlines()[0] + "\n"})  # before Linux 5.13
    pressure = cgroup.stats().pressure
    assert pressure is not None and (pressure.cpu_waiting, pressure.cpu_stalled) == (2.5, 0.0)


def test_no_pressure_where_the_kernel_keeps_none(v2_root: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    cgroup = open_driver("cgroupfs-v2", root=v2_root).create("lim-stats", Resources())
    monkeypatch.setattr(core, "host_has_pressure", lambda: False)
    assert cgroup.stats().pressure is None


# --- cgroup v1 -------------------------------------------------------------------------------

def test_v1_io_limits_go_to_the_blkio_throttle_files(v1_root: Path,
                                                    written: list[tuple[str, str]]) -> None:
    open_driver("cgroupfs-v1", root=v1_root).create("lim-io", Resources(
        io_read_bps=(VDA,), io_write_bps=(VDB,), io_read_iops=(DeviceLimit("254:0", 254, 0, 7),),
        io_write_iops=(VDA,)))
    assert [(name, value) for name, value in written if name.startswith("blkio")] == [
        ("blkio.throttle.read_bps_device", f"254:0 {10 << 20}"),
        ("blkio.throttle.write_bps_device", "253:16 0"),  # 0: no limit
        ("blkio.throttle.read_iops_device", "254:0 7"),
        ("blkio.throttle.write_iops_device", f"254:0 {10 << 20}"),
    ]


def test_v1_without_blkio_io_limits_are_an_error(tmp_path: Path,
                                                 fake_fs: Callable[..., Path]) -> None:
    root = fake_fs(make_v1_root(tmp_path / "cgroup", hierarchies=(
        "memory", "cpu", "cpuacct", "cpuset", "pids", "freezer", "devices")))
    driver = open_driver("cgroupfs-v1", root=root)
    with pytest.raises(ValueError, match="io_write_iops: the blkio hierarchy is not mounted"):
        driver.create("lim-io", Resources(io_write_iops=(VDA,)))
    cgroup = driver.create("lim-io", Resources())
    assert cgroup.stats().io == []


def test_v1_has_no_memory_high(v1_root: Path) -> None:
    with pytest.raises(ValueError, match="memory_high needs cgroup v2"):
        open_driver("cgroupfs-v1", root=v1_root).create("lim-mem",
                                                         Resources(memory_high=MIB))
    assert not (v1_root / "memory" / "ctr" / "lim-mem").exists()


def test_v1_swap_is_memory_plus_swap(v1_root: Path) -> None:
    cgroup = open_driver("cgroupfs-v1", root=v1_root).create("lim-mem", Resources(
        memory_max=256 * MIB, memory_swap_max=64 * MIB))
    memory = v1_root / "memory" / "ctr" / "lim-mem"
    assert read(memory / "memory.limit_in_bytes") == str(256 * MIB)
    assert read(memory / "memory.memsw.limit_in_bytes") == str(320 * MIB)
    cgroup.apply(Resources(memory_max=128 * MIB))  # the swap allowance stays 64M
    assert read(memory / "memory.memsw.limit_in_bytes") == str(192 * MIB)
    cgroup.apply(Resources(memory_swap_max=0))
    assert read(memory / "memory.limit_in_bytes") == str(128 * MIB)
    assert read(memory / "memory.memsw.limit_in_bytes") == str(128 * MIB)


@pytest.mark.parametrize(("before", "after", "order"), [
    ((256, 64), (512, 64), ["memory.memsw.limit_in_bytes", "memory.limit_in_bytes"]),
    ((256, 64), (128, 64), ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]),
    ((256, 64), (300, 0), ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]),
])
def test_v1_memsw_is_never_below_the_memory_limit(
        v1_root: Path, written: list[tuple[str, str]], before: tuple[int, int],
        after: tuple[int, int], order: list[str]) -> None:
    cgroup = open_driver("cgroupfs-v1", root=v1_root).create("lim-mem", Resources(
        memory_max=before[0] * MIB, memory_swap_max=before[1] * MIB))
    written.clear()
    cgroup.apply(Resources(memory_max=after[0] * MIB, memory_swap_max=after[1] * MIB))
    assert [name for name, _ in written] == order


def test_v1_swap_needs_a_memory_limit(v1_root: Path) -> None:
    with pytest.raises(ValueError, match="memory_swap_max needs memory_max on cgroup v1"):
        open_driver("cgroupfs-v1", root=v1_root).create("lim-mem",
                                                         Resources(memory_swap_max=MIB))


def test_v1_stats_io_events_and_pressure_of_the_unified_directory(v1_root: Path) -> None:
    cgroup = open_driver("cgroupfs-v1", root=v1_root).create("lim-stats", Resources())
    write_files(v1_root / "blkio" / "ctr" / "lim-stats", {
        "blkio.throttle.io_service_bytes_recursive": V1_IO_SERVICE_BYTES,
        "blkio.throttle.io_serviced_recursive": V1_IO_SERVICED})
    write_files(v1_root / "memory" / "ctr" / "lim-stats", {
        "memory.failcnt": "9\n", "memory.oom_control": V1_OOM_CONTROL})
    write_files(v1_root / "unified" / "ctr" / "lim-stats", {"io.pressure": IO_PRESSURE})
    stats = cgroup.stats()
    assert stats.io == [DeviceIo("254:0", 5242880, 10485760, 10, 20)]
    assert stats.memory_events == {"max": 9, "oom_kill": 3}
    assert stats.pressure is not None
    assert (stats.pressure.io_waiting, stats.pressure.io_stalled) == (7.0, 5.0)


def test_v1_without_unified_has_no_pressure(tmp_path: Path,
                                            fake_fs: Callable[..., Path]) -> None:
    root = fake_fs(make_v1_root(tmp_path / "cgroup"))
    stats = open_driver("cgroupfs-v1", root=root).create("lim-stats", Resources()).stats()
    assert stats.pressure is None
    assert stats.io == []  # "Total 0": nothing counted yet


# --- systemd ---------------------------------------------------------------------------------

def test_every_new_limit_has_its_property(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "253:16").mkdir()
    (tmp_path / "253:16" / "uevent").write_text("MAJOR=253\nMINOR=16\nDEVNAME=zram1\n")
    monkeypatch.setattr(iolimits, "SYS_BLOCK", tmp_path)
    resources = Resources(memory_high=200 * MIB, memory_swap_max=0, io_read_bps=(VDA,),
                          io_write_bps=(VDA, VDB), io_read_iops=(VDB,), io_write_iops=(VDA,))
    props = {name: (variant.signature, variant.value)
             for name, variant in properties.resource_properties(resources)}
    infinity = 2**64 - 1
    assert props == {
        "MemoryHigh": ("t", 200 * MIB),
        "MemorySwapMax": ("t", 0),
        "IOReadBandwidthMax": ("a(st)", [["/dev/vda", 10 << 20]]),
        # systemd finds a device by its node: a bare MAJ:MIN by the name sysfs gives it
        "IOWriteBandwidthMax": ("a(st)", [["/dev/vda", 10 << 20], ["/dev/zram1", infinity]]),
        "IOReadIOPSMax": ("a(st)", [["/dev/zram1", infinity]]),
        "IOWriteIOPSMax": ("a(st)", [["/dev/vda", 10 << 20]]),
    }
    assert set(properties.PROPERTIES) == set(limits.BY_NAME) - {"egress_rate", "ingress_rate"}


def test_systemd_on_v1_writes_what_it_only_takes_on_v2_itself(
        tmp_path: Path, fake_fs: Callable[..., Path]) -> None:
    root = fake_fs(make_v1_root(tmp_path / "cgroup"))
    manager = FakeManager(root, unknown=set())
    (root / "ctr.slice").mkdir()
    driver = SystemdDriver(root, bus=manager)  # type: ignore[arg-type]
    cgroup = driver.create("lim-sd", Resources(
        memory_max=256 * MIB, io_read_bps=(VDA,), io_write_iops=(VDA,)))
    try:
        (_, props), = manager.started
        assert props["IOReadBandwidthMax"] == [["/dev/vda", 10 << 20]]  # systemd makes it blkio
        assert "IOWriteIOPSMax" not in props  # which it would not do for this one
        blkio = root / "blkio" / "ctr.slice" / "ctr-lim-sd.scope"
        assert read(blkio / "blkio.throttle.write_iops_device") == f"254:0 {10 << 20}"
        with pytest.raises(ValueError, match="memory_high needs cgroup v2"):
            cgroup.apply(Resources(memory_high=MIB))
    finally:
        cgroup.joined(0)  # lets the stand-in process go
