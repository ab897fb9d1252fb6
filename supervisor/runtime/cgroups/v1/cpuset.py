"""The v1 cpuset controller.

A new v1 cpuset cgroup starts with empty ``cpuset.cpus`` and ``cpuset.mems``, and no process can
join it until both are set, so each level is given its parent's before anyone joins. Where ctr
makes the parent, the kernel does it for the parent's children as it makes them
(``cgroup.clone_children``): a write of either file checks every sibling, and with 2000
containers making a cgroup and filling both took 0.86-0.92 ms, against 0.23 ms cloned.
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


def clone_to_children(path: Path) -> None:
    """Have the kernel give each new child of ``path`` its CPUs and memory nodes (it does not
    when a sibling is CPU- or memory-exclusive: ``inherit`` still fills what it left empty)."""
    if files.read(path / "cgroup.clone_children") != "1":
        files.write(path / "cgroup.clone_children", "1")


def apply(path: Path, resources: Resources) -> None:
    if resources.cpuset_cpus is None:
        return
    target = path / "cpuset.cpus"
    limits.check_cpuset(resources.cpuset_cpus, path.parent / "cpuset.cpus", target)
    files.write(target, str(resources.cpuset_cpus))
