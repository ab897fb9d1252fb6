"""The v1 cpuset controller.

A new v1 cpuset cgroup starts with empty ``cpuset.cpus`` and ``cpuset.mems``, and no process can
join it until both are set, so each level is given its parent's before anyone joins.
"""

from __future__ import annotations

from pathlib import Path

from supervisor.model.spec import Resources
from supervisor.runtime.cgroups import files, limits


def inherit(path: Path) -> None:
    """Fill an empty ``cpuset.mems``/``cpuset.cpus`` with the parent's."""
    for name in ("cpuset.mems", "cpuset.cpus"):
        if not files.read(path / name):
            files.write(path / name, files.read(path.parent / name))


def apply(path: Path, resources: Resources) -> None:
    if resources.cpuset_cpus is None:
        return
    target = path / "cpuset.cpus"
    limits.check_cpuset(resources.cpuset_cpus, path.parent / "cpuset.cpus", target)
    files.write(target, str(resources.cpuset_cpus))
