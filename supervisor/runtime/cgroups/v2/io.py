"""The v2 io controller: ``io.max`` (bytes and operations per second, per device) and
``io.stat``.

One write to ``io.max`` sets the keys it names for one device (``254:0 rbps=10485760
wiops=max``) and leaves that device's others as they are, so each device is written once with
every key the update gives it.
"""

from __future__ import annotations

from pathlib import Path

from supervisor.model.spec import Resources
from supervisor.runtime.cgroups import files
from supervisor.runtime.cgroups.base import DeviceIo
from supervisor.runtime.cgroups.files import StrPath

# Resources field -> its key in io.max
KEYS = {"io_read_bps": "rbps", "io_write_bps": "wbps", "io_read_iops": "riops",
        "io_write_iops": "wiops"}


def settings(resources: Resources) -> dict[str, list[str]]:
    """``MAJ:MIN`` -> the ``key=value`` settings ``resources`` gives that device."""
    by_device: dict[str, list[str]] = {}
    for field, key in KEYS.items():
        for limit in getattr(resources, field) or ():
            value = "max" if limit.value is None else limit.value
            by_device.setdefault(limit.numbers, []).append(f"{key}={value}")
    return by_device


def apply(path: Path, resources: Resources) -> None:
    by_device = settings(resources)
    if not by_device:
        return
    target = path / "io.max"
    if not target.exists():
        raise ValueError(f"cannot limit IO in {path}: the io controller is not enabled there "
                         f"({path.parent / 'cgroup.subtree_control'} lacks io)")
    for device, values in by_device.items():
        files.write(target, f"{device} {' '.join(values)}")


def stats(path: StrPath) -> list[DeviceIo]:
    """Per device: ``254:0 rbytes=.. wbytes=.. rios=.. wios=.. dbytes=.. dios=..``; none without
    the io controller."""
    try:
        text = files.read_text(f"{path}/io.stat")
    except FileNotFoundError:
        return []
    devices = []
    for line in text.splitlines():
        device, *pairs = line.split()
        counters = dict(pair.split("=") for pair in pairs)
        devices.append(DeviceIo(device, int(counters["rbytes"]), int(counters["wbytes"]),
                                int(counters["rios"]), int(counters["wios"])))
    return devices
