"""How limits become systemd unit properties, and what the driver does with a property that
systemd refuses: a fake manager stands in for D-Bus here (the real one is in test_systemd_e2e)."""

from __future__ import annotations

from pathlib import Path

import pytest

from supervisor.model.spec import DeviceRule, Resources
from supervisor.model.units import CpuSet
from supervisor.runtime.cgroups.systemd.driver import SystemdDriver
from supervisor.runtime.cgroups.systemd.properties import (
    cpu_mask,
    device_properties,
    resource_properties,
)
from supervisor.systemd.bus import BusError, Property
from supervisor.systemd.units import scope_unit

EVERYTHING = Resources(memory_max=256 << 20, cpu_quota=0.5, cpu_weight=200,
                       cpuset_cpus=CpuSet.of("0-2,9"), pids_max=64)


def test_every_limit_has_its_property_in_the_managers_types() -> None:
    props = {name: (variant.signature, variant.value)
             for name, variant in resource_properties(EVERYTHING)}
    assert props == {
        "MemoryMax": ("t", 256 << 20),
        "CPUQuotaPerSecUSec": ("t", 500_000),  # half a CPU: 0.5 s of CPU time per second
        "CPUWeight": ("t", 200),
        "AllowedCPUs": ("ay", bytes([0b111, 0b10])),
        "TasksMax": ("t", 64),
    }


def test_unset_and_skipped_limits_are_left_out() -> None:
    assert resource_properties(Resources()) == []
    names = [name for name, _ in resource_properties(EVERYTHING, skip={"cpuset_cpus"})]
    assert "AllowedCPUs" not in names and "MemoryMax" in names


def test_tiny_quota_is_raised_to_what_the_kernel_accepts() -> None:
    ((_, variant),) = resource_properties(Resources(cpu_quota=0.001))
    assert variant.value == 10_000  # 1 ms per 100 ms period


def test_device_rules_become_a_closed_policy_and_device_allow(tmp_path: Path) -> None:
    proc_devices = tmp_path / "devices"
    proc_devices.write_text("Character devices:\n  1 mem\n136 pts\n\nBlock devices:\n  7 loop\n")
    rules = (DeviceRule("c", access="m"), DeviceRule("c", 1, 3), DeviceRule("c", 136),
             DeviceRule("b", 7, 2, "r"), DeviceRule("c", 250), DeviceRule("a", access="m"))
    props = {name: variant for name, variant in device_properties(rules, proc_devices)}
    assert (props["DevicePolicy"].signature, props["DevicePolicy"].value) == ("s", "closed")
    assert props["DeviceAllow"].signature == "a(ss)"
    assert props["DeviceAllow"].value == [
        ["char-*", "m"], ["/dev/char/1:3", "rwm"], ["char-pts", "rwm"], ["/dev/block/7:2", "r"],
        ["char-250", "rwm"],  # a major /proc/devices does not name: by number
        ["char-*", "m"], ["block-*", "m"],
    ]
    assert device_properties(None) == []  # privileged: systemd's default, every device


def test_cpu_mask() -> None:
    assert cpu_mask(CpuSet.of("0")) == b"\x01"
    assert cpu_mask(CpuSet.of("8")) == b"\x00\x01"


def test_unit_name_is_the_scope_in_the_contract() -> None:
    assert scope_unit("web") == "ctr-web.scope"
    with pytest.raises(ValueError):
        scope_unit("../x")


class FakeManager:
    """Records the calls; refuses properties named in ``unknown`` as systemd does, and makes the
    scope's cgroup (v2) as it would."""

    def __init__(self, root: Path, unknown: set[str]) -> None:
        self.root = root
        self.unknown = unknown
        self.started: list[tuple[str, dict[str, object]]] = []
        self.updated: list[dict[str, object]] = []

    def _check(self, properties: list[Property]) -> dict[str, object]:
        for name, _ in properties:
            if name in self.unknown:
                raise BusError("org.freedesktop.DBus.Error.PropertyReadOnly",
                               f"Cannot set property {name}, or unknown property.")
        return {name: variant.value for name, variant in properties}

    def reset_failed_unit(self, name: str) -> None:
        pass

    def start_transient_unit(self, name: str, properties: list[Property]) -> None:
        self.started.append((name, self._check(properties)))
        scope = self.root / "ctr.slice" / name
        scope.mkdir()
        (scope / "cpuset.cpus").write_text("")
        (scope / "cgroup.procs").write_text("")

    def set_unit_properties(self, name: str, properties: list[Property]) -> None:
        self.updated.append(self._check(properties))

    def stop_unit(self, name: str) -> None:
        pass


def test_refused_property_is_written_into_the_cgroup_and_reported_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpu cpuset memory pids\n")
    (tmp_path / "cpuset.cpus.effective").write_text("0-3\n")
    (tmp_path / "ctr.slice").mkdir()
    for level in (tmp_path, tmp_path / "ctr.slice"):
        (level / "cgroup.procs").write_text("")  # what makes each a cgroup
    (tmp_path / "ctr.slice" / "cpuset.cpus.effective").write_text("0-3\n")
    manager = FakeManager(tmp_path, unknown={"AllowedCPUs", "OOMPolicy"})
    driver = SystemdDriver(tmp_path, bus=manager)  # type: ignore[arg-type]
    cgroup = driver.create("web", Resources(memory_max=256 << 20, cpuset_cpus=CpuSet.of("0-2")))
    try:
        (name, props), = manager.started
        assert name == "ctr-web.scope"
        assert props["Delegate"] is True and props["Slice"] == "ctr.slice"
        assert "AllowedCPUs" not in props and "OOMPolicy" not in props
        assert props["MemoryMax"] == 256 << 20
        scope = tmp_path / "ctr.slice" / "ctr-web.scope"
        assert (scope / "cpuset.cpus").read_text().strip() == "0-2"
        cgroup.apply(Resources(cpuset_cpus=CpuSet.of("1"), memory_max=64 << 20))
        assert manager.updated == [{"MemoryMax": 64 << 20}]
        assert (scope / "cpuset.cpus").read_text().strip() == "1"
        warnings = [r.getMessage() for r in caplog.records if "does not take" in r.getMessage()]
        assert len(warnings) == 2
    finally:
        cgroup.joined(0)  # lets the stand-in process go
