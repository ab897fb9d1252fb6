"""The device allow-list on cgroup v1: the ``devices`` controller, written as runc writes it.

``devices.deny`` of ``a`` empties a new cgroup's list (which starts as its parent's), then each
rule goes to ``devices.allow``. The kernel checks every open and mknod of a device node by the
cgroup's processes against the list.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from supervisor.model.spec import DeviceRule
from supervisor.runtime.cgroups import files


def apply(path: Path, rules: Sequence[DeviceRule] | None) -> None:
    """Allow the container exactly ``rules``; None leaves every device to it (privileged)."""
    if rules is None:
        return
    files.write(path / "devices.deny", "a")
    for rule in rules:
        files.write(path / "devices.allow", str(rule))
