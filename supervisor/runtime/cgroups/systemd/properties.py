"""How a container's :class:`Resources` become systemd unit properties.

Each limit has one property (``systemd.resource-control(5)``), in the D-Bus types the manager
expects. CPU quota is per second of wall time there; cpusets are a CPU bitmask; per-device IO
limits name the device by its node, "max" being the largest value (``infinity``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from dbus_next.signature import Variant

from supervisor.model import iolimits
from supervisor.model.spec import DeviceLimit, DeviceLimits, DeviceRule, Resources
from supervisor.model.units import CpuSet
from supervisor.runtime.cgroups.limits import CPU_PERIOD_US, cpu_quota_us

_US_PER_SEC = 1_000_000
_INFINITY = 2**64 - 1  # systemd's "no limit" (CGROUP_LIMIT_MAX)


def cpu_mask(cpus: CpuSet) -> bytes:
    """A cpuset such as 0-2,4 as systemd's AllowedCPUs bitmask: bit N of byte N//8 is CPU N."""
    mask = bytearray(cpus.ranges[-1][1] // 8 + 1)
    for cpu in cpus:
        mask[cpu // 8] |= 1 << (cpu % 8)
    return bytes(mask)


def device_node(limit: DeviceLimit) -> str:
    """The node systemd finds the device's numbers by: as given, or, for a bare ``MAJ:MIN``,
    the one the kernel names (a device it no longer has: systemd's error says so)."""
    if limit.device.startswith("/"):
        return limit.device
    return iolimits.node(limit.numbers) or f"/dev/block/{limit.numbers}"


def _per_device(limits: DeviceLimits) -> Variant:
    return Variant("a(st)", [[device_node(limit), _INFINITY if limit.value is None else limit.value]
                             for limit in limits])


# Resources field -> (property, how its value becomes that property's Variant).
PROPERTIES: dict[str, tuple[str, Callable[[Any], Variant]]] = {
    "memory_max": ("MemoryMax", lambda v: Variant("t", v)),
    "cpu_quota": ("CPUQuotaPerSecUSec",
                  lambda v: Variant("t", cpu_quota_us(v) * _US_PER_SEC
                                    // CPU_PERIOD_US)),
    "cpu_weight": ("CPUWeight", lambda v: Variant("t", v)),
    "cpuset_cpus": ("AllowedCPUs", lambda v: Variant("ay", cpu_mask(v))),
    "pids_max": ("TasksMax", lambda v: Variant("t", v)),
    "memory_high": ("MemoryHigh", lambda v: Variant("t", v)),
    "memory_swap_max": ("MemorySwapMax", lambda v: Variant("t", v)),
    "io_read_bps": ("IOReadBandwidthMax", _per_device),
    "io_write_bps": ("IOWriteBandwidthMax", _per_device),
    "io_read_iops": ("IOReadIOPSMax", _per_device),
    "io_write_iops": ("IOWriteIOPSMax", _per_device),
}
# Limits systemd takes only on cgroup v2: on v1 it translates the IO bandwidths to blkio but not
# the operations, and has no memory+swap or memory.high (the driver writes these itself).
V2_ONLY = ("memory_high", "memory_swap_max", "io_read_iops", "io_write_iops")


def resource_properties(resources: Resources,
                        skip: Iterable[str] = ()) -> list[tuple[str, Variant]]:
    """The unit properties for every limit of ``resources`` that is set, except the fields in
    ``skip`` (limits the driver writes into the cgroup itself)."""
    skipped = set(skip)
    return [
        (name, convert(value))
        for field, (name, convert) in PROPERTIES.items()
        if field not in skipped and (value := getattr(resources, field)) is not None
    ]


def field_of(property_name: str) -> str | None:
    """The Resources field a property carries, if it is one of ours."""
    return next((field for field, (name, _) in PROPERTIES.items() if name == property_name), None)


_DEVICE_CLASSES = {"c": "char", "b": "block"}


def _device_groups(devices: Path) -> dict[tuple[str, int], str]:
    """(type, major) -> the device group name in /proc/devices, as DeviceAllow= spells it."""
    groups: dict[tuple[str, int], str] = {}
    kind = ""
    for line in devices.read_text().splitlines():
        if line.endswith(":"):
            kind = "c" if line.startswith("Character") else "b"
        elif line.strip():
            major, name = line.split(maxsplit=1)
            groups.setdefault((kind, int(major)), name)
    return groups


def _device_allow(rule: DeviceRule, groups: dict[tuple[str, int], str]) -> list[list[str]]:
    """The DeviceAllow= entries of one rule: ``/dev/char/MAJ:MIN`` (systemd takes the numbers
    from such a path without looking for the node), ``char-GROUP`` for every minor of a major,
    ``char-*`` for every device of a type."""
    kinds = ("c", "b") if rule.type == "a" else (rule.type,)
    entries = []
    for kind in kinds:
        if rule.major is None:
            node = f"{_DEVICE_CLASSES[kind]}-*"
        elif rule.minor is None:
            node = f"{_DEVICE_CLASSES[kind]}-{groups.get((kind, rule.major), rule.major)}"
        else:
            node = f"/dev/{_DEVICE_CLASSES[kind]}/{rule.major}:{rule.minor}"
        entries.append([node, rule.access])
    return entries


def device_properties(rules: Sequence[DeviceRule] | None,
                      devices: Path = Path("/proc/devices")) -> list[tuple[str, Variant]]:
    """DevicePolicy=closed with ``rules`` as DeviceAllow=; none for every device (None)."""
    if rules is None:
        return []
    groups = _device_groups(devices)
    allow = [entry for rule in rules for entry in _device_allow(rule, groups)]
    return [("DevicePolicy", Variant("s", "closed")), ("DeviceAllow", Variant("a(ss)", allow))]
