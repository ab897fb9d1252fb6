"""Host devices given to a container (docker's ``--device``): a node, where it appears inside,
what the container may do with it."""

from __future__ import annotations

import os
import stat
from typing import Any

from supervisor.model.errors import Invalid
from supervisor.model.spec import DEVICE_ACCESS, DeviceSpec
from supervisor.model.values import absolute_path, string


def device_node(value: Any) -> str:
    """The host path of a character or block device node."""
    path = absolute_path(value)
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise Invalid(f"device {path}: {exc.strerror}") from None
    if not (stat.S_ISCHR(mode) or stat.S_ISBLK(mode)):
        raise Invalid(f"{path} is not a device node (character or block)")
    return path


def device_target(value: Any) -> str:
    """Where a device appears inside: under /dev, as every program looks for one there."""
    path = absolute_path(value)
    if not path.startswith("/dev/") or path.count("/") < 2 or path.endswith("/"):
        raise Invalid(f"a device's path inside must be under /dev/, got {path!r}")
    return path


def device_permissions(value: Any) -> str:
    """Any of r (read), w (write), m (mknod), each once."""
    text = string(value)
    if not text or set(text) - set(DEVICE_ACCESS) or len(set(text)) != len(text):
        raise Invalid(f"not device permissions: {text!r} (any of r, w, m, e.g. \"rwm\", \"r\")")
    return text


def device(value: Any) -> DeviceSpec:
    """docker's ``--device HOST[:CONTAINER][:PERMISSIONS]``."""
    text = string(value)
    parts = text.split(":")
    if len(parts) > 3 or not parts[0]:
        raise Invalid(f"not a device: {text!r} (use HOST[:CONTAINER][:PERMISSIONS], "
                      "e.g. /dev/fuse or /dev/sdb:/dev/xvdb:r)")
    path = device_node(parts[0])
    target, permissions = path, DEVICE_ACCESS
    if len(parts) == 3:
        target, permissions = device_target(parts[1]), device_permissions(parts[2])
    elif len(parts) == 2:  # a path or permissions, as docker reads the second part
        if parts[1].startswith("/"):
            target = device_target(parts[1])
        else:
            permissions = device_permissions(parts[1])
    return DeviceSpec(path=path, target=target, permissions=permissions)
