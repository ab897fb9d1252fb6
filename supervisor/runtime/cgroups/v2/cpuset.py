"""The v2 cpuset controller: ``cpuset.cpus``, checked against what the parent may use.

An empty ``cpuset.cpus`` in v2 means "the parent's", so nothing needs copying as in v1.
"""

from __future__ import annotations

from pathlib import Path

from supervisor.model.spec import Resources
from supervisor.runtime.cgroups import files, limits


def apply(path: Path, resources: Resources) -> None:
    if resources.cpuset_cpus is None:
        return
    target = path / "cpuset.cpus"
    limits.check_cpuset(resources.cpuset_cpus, path.parent / "cpuset.cpus.effective", target)
    files.write(target, str(resources.cpuset_cpus))
