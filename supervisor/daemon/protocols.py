"""What the parts of ctrd see of each other, so none imports the one that uses it: a unit sees
its containers as ``Running`` and makes them through a ``Launcher``; the followers of units (the
``ctr@`` services, machined) see a unit as ``Followed``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from supervisor.daemon.health import Result
from supervisor.daemon.states import State
from supervisor.model.spec import ContainerSpec, Resources
from supervisor.runtime.cgroups import Cgroup
from supervisor.runtime.container import Options
from supervisor.runtime.network import Attachment


class Running(Protocol):
    """A container as a unit runs it (``supervisor.runtime.container.Container``)."""

    spec: ContainerSpec  # what this run was started with: the image's defaults applied
    pid: int | None
    started_at: float | None
    cgroup: Cgroup | None
    attachment: Attachment | None

    @property
    def address(self) -> str | None: ...
    def alive(self) -> bool: ...
    def ended_fd(self) -> int: ...  # readable once the container has ended
    def collect(self) -> tuple[int | None, float | None]: ...  # exit code and time, once ended
    def oom_killed(self) -> bool: ...
    def signal(self, sig: int) -> None: ...
    def update(self, resources: Resources) -> None: ...  # new limits, live
    # teardown, but for the removal of what it set aside, returned: it need not delay a restart
    def vacate(self) -> Callable[[], None]: ...
    def vacated_at_once(self) -> bool: ...  # vacate has no process or job to wait for


class Launcher(Protocol):
    """Makes containers for units: the runtime, or a dummy in tests."""

    def start(self, spec: ContainerSpec, options: Options) -> Running: ...
    def adopt(self, spec: ContainerSpec, options: Options) -> Running: ...  # LookupError
    async def check(self, container: Running, argv: Sequence[str],
                    timeout: float) -> Result: ...  # a health check, run inside


class FollowedRecord(Protocol):
    @property
    def want_running(self) -> bool: ...
    @property
    def exit_code(self) -> int | None: ...
    @property
    def oom_killed(self) -> bool: ...
    @property
    def reason(self) -> str | None: ...


class Followed(Protocol):
    """A unit after one of its state changes."""

    @property
    def name(self) -> str: ...
    @property
    def service(self) -> str | None: ...  # the systemd unit it is the face of
    @property
    def state(self) -> State: ...
    @property
    def container(self) -> Running | None: ...
    @property
    def record(self) -> FollowedRecord: ...
    @property
    def status_text(self) -> str | None: ...  # for its systemd unit's STATUS=
