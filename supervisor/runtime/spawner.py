"""How a start makes its cgroup, PID 1 and veth: the direct way (``Direct``), or from a
sandbox of ctrd's warm pool (supervisor.runtime.warm), which ``ctrctl run`` and ctr-runtime
never load.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from supervisor.model.spec import DeviceRule, NetworkSpec, Resources
from supervisor.runtime import network, process
from supervisor.runtime.cgroups import Cgroup, CgroupDriver

KINDS = ("veth", "none")  # the network modes whose containers have a namespace of their own


class Spawner(Protocol):
    """How a start makes its cgroup, PID 1 and veth (runtime/container.py)."""

    def cgroup(self, name: str, resources: Resources,
               rules: Sequence[DeviceRule] | None) -> Cgroup: ...

    def spawn(self, plan: process.LaunchPlan) -> process.Child: ...

    def attach(self, name: str, pid: int, spec: NetworkSpec, state_dir: Path, pool: str,
               bridge: str) -> network.Attachment: ...

    def close(self) -> None:
        """After the start, whether it went well or not: what the container does not need."""
        ...


class Direct:
    """The way without a pool; ``done`` is called once the start is over."""

    def __init__(self, driver: CgroupDriver, done: Callable[[], None] | None = None) -> None:
        self.driver = driver
        self._done = done

    def cgroup(self, name: str, resources: Resources,
               rules: Sequence[DeviceRule] | None) -> Cgroup:
        return self.driver.create(name, resources, rules)

    def spawn(self, plan: process.LaunchPlan) -> process.Child:
        return process.spawn(plan)

    def attach(self, name: str, pid: int, spec: NetworkSpec, state_dir: Path, pool: str,
               bridge: str) -> network.Attachment:
        return network.attach(name, pid, spec, state_dir, pool, bridge)

    def close(self) -> None:
        if self._done is not None:
            self._done()
            self._done = None
