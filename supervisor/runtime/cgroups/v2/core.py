"""Files of the cgroup2 core, present in every cgroup2 directory whatever controllers it has.

Shared with the v1 driver, which keeps a controller-less cgroup2 directory on hybrid hosts to
track and kill every process of a container in one place.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from supervisor.runtime.cgroups import files


def enable_controllers(path: Path, controllers: Iterable[str]) -> None:
    """Delegate ``controllers`` to the children of ``path``: those not enabled yet, in one write."""
    enabled = set(files.read(path / "cgroup.subtree_control").split())
    wanted = [c for c in controllers if c not in enabled]
    if wanted:
        files.write(path / "cgroup.subtree_control", " ".join(f"+{c}" for c in wanted))


def populated(path: Path) -> bool:
    """Whether a process is left in the cgroup or below it; False once the cgroup is gone."""
    try:
        return files.read_keyed(path / "cgroup.events").get("populated") == 1
    except FileNotFoundError:
        return False


def kill(path: Path) -> bool:
    """SIGKILL everything below ``path`` through ``cgroup.kill`` (Linux >= 5.14), frozen processes
    included; False where the kernel lacks it."""
    if not (path / "cgroup.kill").exists():
        return False
    files.write(path / "cgroup.kill", 1)
    return True
