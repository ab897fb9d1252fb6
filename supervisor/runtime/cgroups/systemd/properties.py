"""How a container's :class:`Resources` become systemd unit properties.

Each limit has one property (``systemd.resource-control(5)``), in the D-Bus types the manager
expects. CPU quota is per second of wall time there; cpusets are a CPU bitmask.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from dbus_next.signature import Variant

from supervisor.config.spec import Resources
from supervisor.config.units import parse_cpu_list
from supervisor.runtime.cgroups.limits import CPU_PERIOD_US, cpu_quota_us

_US_PER_SEC = 1_000_000


def cpu_mask(cpus: str) -> bytes:
    """A cpuset such as "0-2,4" as systemd's AllowedCPUs bitmask: bit N of byte N//8 is CPU N."""
    numbers = parse_cpu_list(cpus)
    mask = bytearray((max(numbers) // 8 + 1) if numbers else 0)
    for cpu in numbers:
        mask[cpu // 8] |= 1 << (cpu % 8)
    return bytes(mask)


# Resources field -> (property, how its value becomes that property's Variant).
PROPERTIES: dict[str, tuple[str, Callable[[object], Variant]]] = {
    "memory_max": ("MemoryMax", lambda v: Variant("t", v)),
    "cpu_quota": ("CPUQuotaPerSecUSec",
                  lambda v: Variant("t", cpu_quota_us(float(str(v))) * _US_PER_SEC
                                    // CPU_PERIOD_US)),
    "cpu_weight": ("CPUWeight", lambda v: Variant("t", v)),
    "cpuset_cpus": ("AllowedCPUs", lambda v: Variant("ay", cpu_mask(str(v)))),
    "pids_max": ("TasksMax", lambda v: Variant("t", v)),
}


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
