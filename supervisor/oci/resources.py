"""``linux.resources`` (of a config.json, and of ``ctr-runtime update --resources``) as the model's
limits, the cgroup files written as given (``unified``) and the device allow-list.

CPU time is the model's quota in CPUs (``quota / period``), written with the kernel's default
period of 100 ms; shares become a weight as systemd converts them (1024 -> 100), which the v1
driver turns back into shares. Block I/O throttles are the model's per-device limits, the device
by its numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from supervisor.model import resources as limits
from supervisor.model.cgroups import cgroup_file
from supervisor.model.devices import device_permissions
from supervisor.model.errors import Invalid
from supervisor.model.spec import DeviceLimit, DeviceLimits, DeviceRule, Resources
from supervisor.model.values import boolean, integer, one_of, string, string_table
from supervisor.oci.document import Obj

KNOWN = ("devices", "memory", "cpu", "blockIO", "hugepageLimits", "network", "pids", "rdma",
         "unified")
_MEMORY = ("limit", "reservation", "swap", "kernel", "kernelTCP", "swappiness",
           "disableOOMKiller", "useHierarchy", "checkBeforeUpdate")
_CPU = ("shares", "quota", "burst", "period", "realtimeRuntime", "realtimePeriod", "cpus", "mems",
        "idle")
_DEVICE = ("allow", "type", "major", "minor", "access")
_DEFAULT_PERIOD = 100_000
_ANY = -1  # a device number of any device
_signed = integer(-1, 2**63 - 1)


@dataclass(frozen=True)
class Limits:
    resources: Resources
    files: tuple[tuple[str, str], ...] = ()
    device_rules: tuple[DeviceRule, ...] | None = None  # None: not given


def _limit(name: str, value: Any) -> Any:
    """The model's parser of limit ``name``, so a bad value reads as a definition's would."""
    return limits.BY_NAME[name].parse(value)


def _memory(obj: Obj) -> dict[str, Any]:
    """The limit and swap: OCI's ``swap`` is memory plus swap (v1's memsw), the model's
    ``memory_swap_max`` the swap beside the memory (v2's memory.swap.max)."""
    for key, what in (("reservation", "a memory reservation (soft limit)"),
                      ("kernel", "a kernel memory limit"), ("kernelTCP", "a TCP buffer limit"),
                      ("swappiness", "a swappiness"),
                      ("disableOOMKiller", "turning the OOM killer off")):
        obj.unsupported(key, what)
    obj.get("useHierarchy", boolean)
    obj.get("checkBeforeUpdate", boolean)
    found: dict[str, Any] = {}
    limit = obj.get("limit", _signed)
    if limit not in (None, _ANY, 0):
        found["memory_max"] = obj.get("limit", lambda v: _limit("memory_max", v))
    swap = obj.get("swap", _signed)
    if swap not in (None, _ANY, 0):
        assert swap is not None
        if "memory_max" not in found:
            raise obj.fail("swap", "a limit of memory and swap needs the memory limit too")
        if swap < found["memory_max"]:
            raise obj.fail("swap", f"{swap} is below the memory limit {found['memory_max']}: it "
                           "is of memory and swap together")
        found["memory_swap_max"] = _limit("memory_swap_max", swap - found["memory_max"])
    return found


def _cpu(obj: Obj) -> dict[str, Any]:
    for key, what in (("burst", "a CPU burst"), ("realtimeRuntime", "real-time CPU time"),
                      ("realtimePeriod", "a real-time period"), ("mems", "memory nodes (mems)"),
                      ("idle", "an idle CPU policy")):
        obj.unsupported(key, what)
    found: dict[str, Any] = {}
    shares = obj.get("shares", integer(0, 262_144))
    if shares:
        found["cpu_weight"] = _limit("cpu_weight", min(max(shares * 100 // 1024, 1), 10_000))
    quota = obj.get("quota", _signed)
    period = obj.value_or("period", integer(1_000, 1_000_000), _DEFAULT_PERIOD)
    if quota not in (None, _ANY, 0):
        assert quota is not None
        try:
            found["cpu_quota"] = _limit("cpu_quota", quota / period)
        except Invalid as exc:
            raise obj.fail("quota", f"{quota} of every {period} µs: {exc}") from None
    cpus = obj.get("cpus", string)
    if cpus:
        found["cpuset_cpus"] = obj.get("cpus", lambda v: _limit("cpuset_cpus", v))
    return found


def _rule(obj: Obj) -> tuple[bool, DeviceRule]:
    number = integer(_ANY, 2**32 - 1)
    major, minor = obj.get("major", number), obj.get("minor", number)
    kind = obj.value_or("type", one_of("a", "b", "c"), "a")
    rule = DeviceRule(kind,  # type: ignore[arg-type]  # one_of checked it
                      None if major in (None, _ANY) or kind == "a" else major,
                      None if minor in (None, _ANY) or kind == "a" else minor,
                      obj.value_or("access", device_permissions, "rwm"))
    return obj.required("allow", boolean), rule


def device_rules(obj: Obj) -> tuple[DeviceRule, ...] | None:
    """The allow-list the rules amount to, read in order as the v1 controller applies them;
    ``(DeviceRule("a"),)`` allows every device. None: no rules given."""
    entries = list(obj.objects("devices", _DEVICE))
    if not entries:
        return None
    # A new cgroup allows what its parent does: everything.
    every, allowed = True, list[DeviceRule]()
    for index, entry in enumerate(entries):
        allow, rule = _rule(entry)
        if rule.type == "a":
            if rule.access != "rwm":
                raise entry.fail("access", "a rule for every device must be for all access "
                                 '("rwm")')
            every, allowed = allow, []
        elif allow:
            if not every:
                allowed.append(rule)
        elif every:
            raise obj.fail("devices", f"[{index}] denies one device after every device was "
                           "allowed: list the allowed devices after a rule denying all instead")
        else:
            allowed = [kept for kept in allowed if kept != rule]
    return (DeviceRule("a"),) if every else tuple(allowed)


_BLOCK_IO = ("weight", "leafWeight", "weightDevice", "throttleReadBpsDevice",
             "throttleWriteBpsDevice", "throttleReadIOPSDevice", "throttleWriteIOPSDevice")
_THROTTLES = (("throttleReadBpsDevice", "io_read_bps"), ("throttleWriteBpsDevice", "io_write_bps"),
              ("throttleReadIOPSDevice", "io_read_iops"),
              ("throttleWriteIOPSDevice", "io_write_iops"))


def _block_io(obj: Obj) -> dict[str, Any]:
    """The throttles as the model's per-device limits (by ``MAJ:MIN``; a rate of 0 lifts the
    device's limit, as runc writes it). Weights are not among ctr's limits."""
    for key in ("weight", "leafWeight", "weightDevice"):
        obj.unsupported(key, "an I/O weight")
    found: dict[str, Any] = {}
    for key, name in _THROTTLES:
        given: list[DeviceLimit] = []
        for entry in obj.objects(key, ("major", "minor", "rate")):
            device = f"{entry.required('major', integer(0, 2**32))}:" \
                     f"{entry.required('minor', integer(0, 2**32))}"
            if any(limit.numbers == device for limit in given):
                raise entry.fail("minor", f"device {device} is given twice")
            given += entry.required("rate", _throttle(name, device))
        if given:
            found[name] = tuple(given)
    return found


def _throttle(name: str, device: str) -> Callable[[Any], DeviceLimits]:
    """A parser of the rate of ``device``, by the model's parser of limit ``name``."""
    def parse(rate: Any) -> DeviceLimits:
        try:
            limits: DeviceLimits = _limit(name, {device: integer(0, 2**64 - 1)(rate) or "max"})
        except Invalid as exc:  # said of the member, not of a table keyed by the device
            raise Invalid(str(exc).removeprefix(f"{device}: ")) from None
        return limits
    return parse


def parse(obj: Obj) -> Limits:
    for key, what in (("hugepageLimits", "huge page limits"),
                      ("network", "network class and priorities"), ("rdma", "RDMA limits")):
        obj.unsupported(key, what)
    found: dict[str, Any] = {}
    block_io = obj.obj("blockIO", _BLOCK_IO)
    if block_io is not None:
        found.update(_block_io(block_io))
    memory = obj.obj("memory", _MEMORY)
    if memory is not None:
        found.update(_memory(memory))
    cpu = obj.obj("cpu", _CPU)
    if cpu is not None:
        found.update(_cpu(cpu))
    pids = obj.obj("pids", ("limit",))
    if pids is not None and pids.get("limit", _signed) not in (None, _ANY, 0):
        found["pids_max"] = pids.get("limit", lambda v: _limit("pids_max", v))
    files = obj.value_or("unified", _unified, ())
    return Limits(Resources(**found), files, device_rules(obj))


def _unified(value: Any) -> tuple[tuple[str, str], ...]:
    table = string_table(value)
    for name in table:
        try:
            cgroup_file(name)
        except Invalid as exc:
            raise Invalid(str(exc), at=(name,)) from None
    return tuple(table.items())
