"""Container cgroups behind one driver interface: cgroupfs v2 and cgroupfs v1 (with hybrid hosts).

Each controller is a module per cgroup version (``v2/memory.py``, ``v1/memory.py``, ...) that
applies its part of :class:`~supervisor.model.spec.Resources` and reads its statistics; the
drivers put them together.
"""

from supervisor.runtime.cgroups.base import (
    Cgroup,
    CgroupDriver,
    CgroupStats,
    CgroupUnavailableError,
)
from supervisor.runtime.cgroups.detect import detect, open_driver
from supervisor.runtime.cgroups.files import CgroupWriteError

__all__ = [
    "Cgroup",
    "CgroupDriver",
    "CgroupStats",
    "CgroupUnavailableError",
    "CgroupWriteError",
    "detect",
    "open_driver",
]
