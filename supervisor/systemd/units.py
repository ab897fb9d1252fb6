"""The names of ctr's units, and whether systemd runs this host."""

from __future__ import annotations

from pathlib import Path

from supervisor.model.names import container_name

SLICE = "ctr.slice"  # every container's scope is in it
RUNNING = Path("/run/systemd/system")  # exists where systemd is PID 1 (sd_booted(3))
_SCOPE_PREFIX, _SCOPE_SUFFIX = "ctr-", ".scope"


def slice_path(name: str) -> Path:
    """Where systemd puts slice ``name`` in the cgroup tree: each dash a level down, as
    ``kubepods-burstable.slice`` is ``kubepods.slice/kubepods-burstable.slice``."""
    parts = name.removesuffix(".slice").split("-")
    return Path(*("-".join(parts[:i]) + ".slice" for i in range(1, len(parts) + 1)))


def booted() -> bool:
    return RUNNING.is_dir()


def service_unit(name: str) -> str:
    """``ctr@NAME.service``: the systemd face of definition NAME."""
    return f"ctr@{container_name(name)}.service"


def scope_unit(name: str) -> str:
    """``ctr-NAME.scope``: the delegated scope container NAME runs in."""
    return f"{_SCOPE_PREFIX}{container_name(name)}{_SCOPE_SUFFIX}"


def scope_container(unit: str) -> str | None:
    """The container whose scope ``unit`` is, if it is one."""
    if unit.startswith(_SCOPE_PREFIX) and unit.endswith(_SCOPE_SUFFIX):
        return unit[len(_SCOPE_PREFIX):-len(_SCOPE_SUFFIX)]
    return None
