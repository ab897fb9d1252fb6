"""Where the v1 hierarchies a container uses are, and the directories of one cgroup in them.

Each controller has its own mount (``ROOT/memory``) or shares one with others
(``ROOT/cpu,cpuacct``, often with ``cpu`` and ``cpuacct`` symlinks to it). Paths are resolved so
a shared mount appears once.
A hybrid host also mounts a controller-less cgroup2 at ``ROOT/unified``. The blkio hierarchy is
used where it is mounted, and needed only for the ``io_*`` limits (and IO statistics).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from supervisor.runtime.cgroups.base import CgroupUnavailableError

CONTROLLERS = ("memory", "cpu", "cpuacct", "cpuset", "pids", "freezer", "devices")
OPTIONAL = ("blkio",)


def mounted(root: Path) -> dict[str, Path]:
    """The v1 hierarchy directory of each controller in :data:`CONTROLLERS` found under ``root``."""
    found: dict[str, Path] = {}
    entries = sorted(root.iterdir()) if root.is_dir() else []
    for controller in (*CONTROLLERS, *OPTIONAL):
        candidates = [root / controller] + [e for e in entries if controller in e.name.split(",")]
        hierarchy = next((c for c in candidates if _is_v1_hierarchy(c)), None)
        if hierarchy:
            found[controller] = hierarchy.resolve()
    return found


def _is_v1_hierarchy(path: Path) -> bool:
    return (path / "cgroup.procs").exists() and not (path / "cgroup.controllers").exists()


@dataclass(frozen=True)
class Hierarchies:
    """One directory per controller (two may be the same), plus the cgroup2 one on hybrid hosts."""

    memory: Path
    cpu: Path
    cpuacct: Path
    cpuset: Path
    pids: Path
    freezer: Path
    devices: Path
    unified: Path | None
    blkio: Path | None = None  # not mounted: no IO limits

    @classmethod
    def find(cls, root: Path) -> Hierarchies:
        found = mounted(root)
        missing = [c for c in CONTROLLERS if c not in found]
        if missing:
            raise CgroupUnavailableError(
                f"cgroup v1 hierarchies not mounted under {root}: {', '.join(missing)}"
            )
        unified = root / "unified"
        return cls(**found, unified=unified if (unified / "cgroup.controllers").exists() else None)

    def child(self, relative: Path | str) -> Hierarchies:
        """The same cgroup path ``relative`` in every hierarchy."""
        return Hierarchies(
            memory=self.memory / relative,
            cpu=self.cpu / relative,
            cpuacct=self.cpuacct / relative,
            cpuset=self.cpuset / relative,
            pids=self.pids / relative,
            freezer=self.freezer / relative,
            devices=self.devices / relative,
            unified=self.unified / relative if self.unified else None,
            blkio=self.blkio / relative if self.blkio else None,
        )

    def directories(self) -> list[Path]:
        """Each distinct directory once: v1 controller ones first, then the cgroup2 one if any."""
        paths = [self.memory, self.cpu, self.cpuacct, self.cpuset, self.pids, self.freezer,
                 self.devices, *([self.blkio] if self.blkio else [])]
        return list(dict.fromkeys([*paths, *([self.unified] if self.unified else [])]))
