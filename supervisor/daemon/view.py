"""What the API, the metrics and ``ctrctl`` see of ctrd: read-only snapshots and the operations.

The API layer and the metrics depend only on this module, so they can be tested against a fake
and the daemon can change inside without touching them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from supervisor.daemon.states import State
from supervisor.images.stats import PullCounts
from supervisor.model.spec import ContainerSpec, MetricsSpec, Resources
from supervisor.runtime.cgroups import Cgroup

STATES = tuple(state.value for state in State)  # every state a container can be in


class NotFound(LookupError):
    """No container or definition of that name (HTTP 404)."""


class Conflict(RuntimeError):
    """The request does not fit the current state, e.g. freezing a stopped container (HTTP 409)."""


class Invalid(ValueError):
    """A request or definition that fails validation (HTTP 400); the message says why."""


@dataclass(frozen=True)
class ContainerView:
    name: str
    definition: str  # the definition it was made from (== name unless launched as an instance)
    state: str  # a State value: "running", "backoff", ...
    pid: int | None
    ip: str | None
    restarts: int
    started_at: float | None  # Unix time of the current (or last) start
    image: str = ""
    exit_code: int | None = None  # of the last run
    oom_killed: bool = False  # the last run ended by the OOM killer
    frozen: bool = False
    reason: str | None = None  # why the last start failed, or why FAILED
    resources: dict[str, Any] = field(default_factory=dict)  # current limits, Resources fields
    seccomp: str = ""  # the system-call filter in force: "default", "unconfined" or a path
    # While STARTING fetches the image: {"image", "layers", "layers_done", "bytes", "total"}
    pulling: dict[str, Any] | None = None
    labels: dict[str, str] = field(default_factory=dict)  # of the running container's image
    exposed_ports: list[str] = field(default_factory=list)  # "80/tcp", from its image
    health: str | None = None  # while it runs with a check: "starting", "healthy", "unhealthy"
    ready: bool = False  # it runs and is ready (its notify = ...); ``start --wait`` waited for it

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Observed:
    """One container as the metrics see it at a scrape: what ctrd knows, and its cgroup for the
    collector to read (no kernel read is made to build it)."""

    name: str
    state: str  # a value of STATES
    definition: str
    image: str
    restarts: int = 0
    exit_code: int | None = None
    started_at: float | None = None  # of the current run, while it runs
    address: str | None = None
    cgroup: Cgroup | None = None  # while it runs
    interfaces: tuple[str, str] | None = None  # (host end, container end) of its veth
    health: str | None = None  # as ``ContainerView.health``
    # While it runs: where its own exporter listens ([metrics]), at ``address`` (None: the
    # host's, network "host")
    metrics: MetricsSpec | None = None

    @classmethod
    def defined(cls, name: str, image: str) -> Observed:
        """A definition that was never started since ctrd started: stopped, as ctrctl shows it."""
        return cls(name, State.STOPPED.value, name, image)


@dataclass(frozen=True)
class Histogram:
    """Observations counted into buckets as they came, as Prometheus takes a histogram."""

    buckets: tuple[tuple[float, int], ...]  # (upper bound, observations at most that), +Inf last
    sum: float


@dataclass(frozen=True)
class ImageStats:
    """The image store and ctrd's pulls, for ``ctr_images`` and ``ctr_image_pull*``."""

    images: int
    pulls: PullCounts


class Backend(Protocol):
    """The operations of ctrd behind the HTTP API."""

    def containers(self) -> list[ContainerView]: ...
    def get(self, name: str) -> ContainerView: ...
    # Returns once RUNNING (wait: and ready), or raises; sockets: (LISTEN_FDNAMES name, fd) of
    # systemd's listening sockets for it, which the backend owns from then on.
    async def start(self, name: str, wait: bool = False,
                    sockets: Sequence[tuple[str, int]] = ()) -> ContainerView: ...
    async def stop(self, name: str) -> ContainerView: ...
    async def restart(self, name: str) -> ContainerView: ...
    async def kill(self, name: str, signal: int) -> ContainerView: ...
    async def freeze(self, name: str) -> ContainerView: ...
    async def thaw(self, name: str) -> ContainerView: ...
    async def update(self, name: str, resources: Resources,
                     persist: bool = False) -> ContainerView: ...
    async def launch(self, definition: str, name: str | None = None) -> ContainerView: ...
    async def launch_spec(self, spec: ContainerSpec, definition: str,
                          name: str | None = None) -> ContainerView: ...
    def add_spec_source(self, source: Callable[[str], ContainerSpec | None]) -> None: ...
    # ctrctl run handed to ctrd: a new container of the run's options (model.runoptions) on
    # the client's stdin, stdout and stderr (or, none sent, /dev/null and its log), which the
    # backend owns from then on; returns once it runs.
    async def run(self, options: dict[str, Any], stdio: Sequence[int] = ()) -> ContainerView: ...
    async def wait(self, name: str) -> ContainerView: ...  # once it does not run
    async def remove(self, name: str) -> None: ...  # stop and forget an instance
    async def remove_all(self) -> None: ...
    def log_path(self, name: str) -> Path: ...  # the container's output, appended while it runs
    def definition_names(self) -> list[str]: ...
    def definition_text(self, name: str) -> str: ...  # merged TOML with its source files
    async def put_definition(self, name: str, text: str) -> None: ...  # validate, store in /etc
    async def reload(self) -> list[str]: ...  # re-read definitions; names that changed
    def exec_info(self, name: str) -> dict[str, Any]: ...  # pid, user, environment, working_dir
    def observe(self) -> list[Observed]: ...  # for the metrics, from another thread
    def image_stats(self) -> ImageStats: ...  # for the metrics, from another thread
    # Seconds from STARTING to RUNNING of each start since ctrd started (an image pull
    # included), for the metrics, from another thread
    def start_durations(self) -> Histogram: ...

