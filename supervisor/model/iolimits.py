"""Per-device IO limits (``io_read_bps``, ``io_write_iops``...): which block device, and its value.

A value is a table of device -> limit, as TOML and JSON write it (``{ "/dev/vda" = "10M" }``),
or docker's ``DEVICE:LIMIT`` (``--device-read-bps /dev/vda:10M``), several joined by commas or
in an array, as a command line gives them. A device is the path of its node, resolved to its
numbers here (as the kernel's files take ``MAJ:MIN``), or ``MAJ:MIN`` itself; the kernel
throttles whole disks only, so a partition is refused with the disk to limit instead.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

from supervisor.model.errors import Invalid, describe
from supervisor.model.units import size
from supervisor.model.values import UNLIMITED, Parse, integer, items, string

if TYPE_CHECKING:
    from supervisor.model.spec import DeviceLimit, DeviceLimits

_NUMBERS = re.compile(r"(\d+):(\d+)")
SYS_BLOCK = Path("/sys/dev/block")  # MAJ:MIN -> the device's sysfs directory
MAX_IOPS = 2**32 - 1  # the kernel keeps an operations limit in 32 bits


def block_device(value: Any) -> tuple[int, int]:
    """The numbers of a whole block device, from its node's path or ``MAJ:MIN``."""
    text = string(value).strip()
    if match := _NUMBERS.fullmatch(text):
        major, minor = int(match[1]), int(match[2])
    else:
        if not text.startswith("/"):
            raise Invalid(f"not a block device: {text!r} (use the path of its node, e.g. "
                          '"/dev/vda", or MAJ:MIN, e.g. "254:0")')
        try:
            info = os.stat(text)
        except OSError as exc:
            raise Invalid(f"block device {text}: {exc.strerror}") from None
        if not stat.S_ISBLK(info.st_mode):
            raise Invalid(f"{text} is not a block device")
        major, minor = os.major(info.st_rdev), os.minor(info.st_rdev)
    sysfs = SYS_BLOCK / f"{major}:{minor}"
    if (sysfs / "partition").exists():
        disk = sysfs.resolve().parent
        raise Invalid(f"{text} is a partition: the kernel limits whole disks, limit /dev/"
                      f"{disk.name} ({(disk / 'dev').read_text().strip()}) instead")
    return major, minor


def node(numbers: str) -> str | None:
    """The node of block device ``MAJ:MIN`` as the kernel names it (``DEVNAME=vda`` in its
    sysfs entry: ``/dev/vda``); None for a device the kernel does not know (any more)."""
    try:
        uevent = (SYS_BLOCK / numbers / "uevent").read_text()
    except OSError:
        return None
    name = next((line[len("DEVNAME="):] for line in uevent.splitlines()
                 if line.startswith("DEVNAME=")), None)
    return None if name is None else f"/dev/{name}"


def bytes_per_second(value: Any) -> int:
    """A throughput such as ``10M`` (per second): more than nothing."""
    amount = size(value)
    if amount <= 0:
        raise Invalid(f"must be more than 0 bytes per second, got {value!r}")
    return amount


iops: Parse[int] = integer(1, MAX_IOPS)


def per_device(parse: Parse[int]) -> Parse[DeviceLimits]:
    """A parser of a table, string or array of per-device values, each read by ``parse`` (or
    "max": the device's limit lifted)."""
    def value_of(text: Any) -> int | None:
        return None if isinstance(text, str) and text.strip() in UNLIMITED else parse(text)

    def entry(device: Any, limit: Any) -> DeviceLimit:
        from supervisor.model.spec import DeviceLimit  # not at the top: see model.resources

        try:
            major, minor = block_device(device)
        except Invalid as e:
            raise Invalid(str(e), at=(device,)) from None
        try:
            return DeviceLimit(str(device).strip(), major, minor, value_of(limit))
        except Invalid as e:
            raise Invalid(f"{device}: {e}", at=(device,)) from None

    def pair(text: Any) -> DeviceLimit:
        device, colon, limit = string(text).strip().rpartition(":")
        if not colon or not device:
            raise Invalid(f"not DEVICE:LIMIT: {text!r} (e.g. /dev/vda:10M)")
        return entry(device, limit)

    def parse_devices(value: Any) -> DeviceLimits:
        if isinstance(value, dict):
            limits = [entry(device, limit) for device, limit in value.items()]
        elif isinstance(value, str):
            limits = [pair(part) for part in value.split(",") if part.strip()]
        elif isinstance(value, list):
            limits = items(pair, value)
        else:
            raise Invalid('expected a table of devices, e.g. { "/dev/vda" = "10M" }, or '
                          f'"/dev/vda:10M", got {describe(value)}')
        if not limits:
            raise Invalid('no device given (e.g. { "/dev/vda" = "10M" })')
        seen: dict[str, str] = {}
        for limit in limits:
            if limit.numbers in seen:
                raise Invalid(f"device {limit.numbers} is given twice ({seen[limit.numbers]} "
                              f"and {limit.device})")
            seen[limit.numbers] = limit.device
        return tuple(limits)
    return parse_devices


def to_json(limits: DeviceLimits) -> dict[str, int | str]:
    """``{device: value}``, "max" for a lifted one: what :func:`per_device` reads back."""
    return {limit.device: "max" if limit.value is None else limit.value for limit in limits}
