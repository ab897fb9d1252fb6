"""The v1 blkio controller's throttling: ``blkio.throttle.{read,write}_{bps,iops}_device`` and
what it counts (``blkio.throttle.io_service_bytes_recursive``, ``..._io_serviced_recursive``).

A line ``MAJ:MIN VALUE`` sets one device's limit, ``0`` lifts it. The kernel counts a device's
IO here only once throttling is in use on it (any cgroup's limit switches it on, until reboot),
so a device no container ever limited shows no IO on v1.
"""

from __future__ import annotations

from pathlib import Path

from supervisor.model.spec import Resources
from supervisor.runtime.cgroups import files
from supervisor.runtime.cgroups.base import DeviceIo
from supervisor.runtime.cgroups.files import StrPath

# Resources field -> its file
FILES = {"io_read_bps": "blkio.throttle.read_bps_device",
         "io_write_bps": "blkio.throttle.write_bps_device",
         "io_read_iops": "blkio.throttle.read_iops_device",
         "io_write_iops": "blkio.throttle.write_iops_device"}
_NO_LIMIT = 0


def apply(path: Path | None, resources: Resources) -> None:
    """``path``: the cgroup in the blkio hierarchy, None where that is not mounted."""
    for field, name in FILES.items():
        limits = getattr(resources, field)
        if not limits:
            continue
        if path is None:
            raise ValueError(f"cannot set {field}: the blkio hierarchy is not mounted (cgroup "
                             "v1 throttles IO only there)")
        for limit in limits:
            files.write(path / name,
                        f"{limit.numbers} {_NO_LIMIT if limit.value is None else limit.value}")


def stats(path: StrPath | None) -> list[DeviceIo]:
    if path is None:
        return []
    transferred = _per_device(files.read_text(f"{path}/blkio.throttle.io_service_bytes_recursive"))
    operations = _per_device(files.read_text(f"{path}/blkio.throttle.io_serviced_recursive"))
    return [DeviceIo(device, counts.get("Read", 0), counts.get("Write", 0),
                     operations.get(device, {}).get("Read", 0),
                     operations.get(device, {}).get("Write", 0))
            for device, counts in transferred.items()]


def _per_device(text: str) -> dict[str, dict[str, int]]:
    """``254:0 Read 5242880`` lines by device and operation (the last line, ``Total N``, has no
    device)."""
    devices: dict[str, dict[str, int]] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3:
            devices.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    return devices
