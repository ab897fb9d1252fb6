"""Where a container's cgroup is: a cgroupfs path, or a systemd scope written as runc's
``--systemd-cgroup`` reads an OCI ``cgroupsPath`` (``slice:prefix:name``)."""

from __future__ import annotations

import re
from typing import Any

from supervisor.model.errors import Invalid
from supervisor.model.spec import SystemdScope
from supervisor.model.values import string

_UNIT_RE = re.compile(r"[A-Za-z0-9:_.\\-]+")
_MAX_COMPONENT = 255  # NAME_MAX
DEFAULT_SLICE = "system.slice"  # runc's for a cgroupsPath without one


def cgroup_path(value: Any) -> str:
    """A path of plain components (no ``.``, ``..`` or empty ones), absolute from the root of
    the cgroup hierarchies, as ``/machine/web``; a relative one is taken from the root too."""
    text = string(value).strip()
    parts = text.strip("/").split("/")
    if not text.strip("/") or any(part in ("", ".", "..") or len(part.encode()) > _MAX_COMPONENT
                                  for part in parts):
        raise Invalid(f"not a cgroup path: {text!r} (plain components, e.g. /machine/web)")
    return "/" + "/".join(parts)


def _unit(name: str, suffix: str, what: str, value: str) -> str:
    if not name.endswith(suffix) or not _UNIT_RE.fullmatch(name) or len(name) > _MAX_COMPONENT:
        raise Invalid(f"not a systemd cgroup path: {value!r}: {what} {name!r} is not a unit "
                      f"name ending in {suffix}")
    return name


def slice_unit(value: Any) -> str:
    """A slice's unit name, ``NAME.slice`` (a Kubernetes pod's is longer than a container's
    name may be)."""
    text = string(value).strip()
    return _unit(text, ".slice", "the slice", text)


def systemd_scope(value: Any) -> SystemdScope:
    """``slice:prefix:name``: the scope ``prefix-name.scope`` in ``slice`` (default
    system.slice); a name that is a slice already (``name.slice``) is refused, as it would be no
    scope of its own."""
    text = string(value).strip()
    parts = text.split(":")
    if len(parts) != 3 or not parts[2]:
        raise Invalid(f"not a systemd cgroup path: {text!r} (use slice:prefix:name, e.g. "
                      "system.slice:ctr:web)")
    slice_name, prefix, name = parts
    slice_name = _unit(slice_name or DEFAULT_SLICE, ".slice", "the slice", text)
    unit = _unit(f"{prefix}-{name}.scope" if prefix else f"{name}.scope", ".scope", "the unit",
                 text)
    return SystemdScope(slice_name, unit)


def cgroup_file(value: Any) -> str:
    """The name of a cgroup v2 interface file, ``CONTROLLER.KEY`` (``memory.high``), as OCI's
    ``unified`` names them: no path, and no file of cgroup's core that moves processes."""
    name = string(value)
    controller, dot, key = name.partition(".")
    if not dot or not controller or not key or "/" in name:
        raise Invalid(f"not a cgroup file: {name!r} (e.g. memory.high)")
    if controller == "cgroup" and key in ("procs", "threads", "kill", "subtree_control"):
        raise Invalid(f"{name} is the runtime's to write, not a limit")
    return name
