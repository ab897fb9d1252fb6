"""Health checks, as docker's HEALTHCHECK: a command run inside the running container now and then.

One ``Checker`` per run of a container (a restart starts a fresh one, "starting" again). The
first check runs ``interval`` after the start, the next ``interval`` after the last one ended;
exit 0 is healthy, anything else (or no exit within ``timeout``) a failure, and ``retries``
failures in a row make the container unhealthy. Failures within ``start_period`` of the start do
not count while it has never been healthy, so a slow start is not a failure; once a check passed,
every failure counts. What follows is the unit's business (``on_failure``, readiness): the checker
reports each result.

A check is a process the unit's launcher starts in all of the container's namespaces and its
cgroup (``exec_check``, on ``supervisor.runtime.exec.spawn_in``), as ``ctrctl exec`` does, and
confined as the container's own processes are. It leads a process group of its own, so a check
that overruns its timeout is killed with whatever it started, and the container is left alone.
ctrd's event loop never waits for it: the fork runs in a thread, the exit and the output are read
from a pidfd and a pipe on the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial

from supervisor.model.health import HealthStatus as Status
from supervisor.model.spec import HealthSpec
from supervisor.runtime import exec as container_exec
from supervisor.runtime import process
from supervisor.runtime.container import Container

log = logging.getLogger(__name__)

OUTPUT_LIMIT = 4096  # of a check's output kept, as docker keeps


@dataclass(frozen=True)
class Result:
    """One check: its exit status (None: killed when its timeout passed) and its output."""

    code: int | None
    output: bytes = b""
    timeout: float = 0.0

    @property
    def passed(self) -> bool:
        return self.code == 0

    def describe(self) -> str:
        if self.code is None:
            return f"timed out after {self.timeout:g}s"
        return f"exit status {self.code}"


Probe = Callable[[HealthSpec], Awaitable["Result | None"]]  # None: no check this time (frozen)
Listener = Callable[["Checker", Result, bool], None]  # and whether the status changed


class Checker:
    """The health of one run; see the module docstring."""

    def __init__(self, spec: HealthSpec, probe: Probe, on_result: Listener,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.spec = spec
        self.status: Status = "starting"
        self.failures = 0  # failing checks in a row that count
        self.last: Result | None = None
        self._probe = probe
        self._on_result = on_result
        self._clock = clock
        self._started = clock()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        """No more checks; one running now is killed (``exec_check`` on cancellation)."""
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.spec.interval)
            try:
                result = await self._probe(self.spec)
            except Exception as exc:  # e.g. the container ended meanwhile: no verdict
                log.debug("health check not run: %s", exc)
                continue
            if result is not None:
                self.record(result)

    def record(self, result: Result) -> None:
        """Count one check's result and report it."""
        self.last = result
        before = self.status
        if result.passed:
            self.failures = 0
            self.status = "healthy"
        elif self.status != "starting" or self._clock() - self._started >= self.spec.start_period:
            self.failures += 1
            if self.failures >= self.spec.retries:
                self.status = "unhealthy"
        self._on_result(self, result, self.status != before)


# -- the real check: a process in the container ---------------------------------------------------


async def exec_check(container: Container, argv: Sequence[str], timeout: float) -> Result:
    """Run ``argv`` in ``container`` as its own processes run (its effective spec's user,
    environment and working directory, its confinement); the result, killed with its process
    group after ``timeout``. Raises ``SpawnError`` if it cannot be started."""
    loop = asyncio.get_running_loop()
    read, write = os.pipe2(os.O_CLOEXEC)
    try:
        null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        try:
            child = await loop.run_in_executor(None, partial(
                _spawn, container, argv, (null, write, write)))
        finally:
            os.close(null)
            os.close(write)
    except BaseException:
        os.close(read)
        raise
    return await _Check(child, read).result(timeout)


def _spawn(container: Container, argv: Sequence[str], stdio: tuple[int, int, int]) -> int:
    """In a thread: the confinement (a filter compiles the first time) and the fork."""
    if container.pid is None:
        raise container_exec.NotRunningError(f"container {container.name} is not running")
    spec = container.spec
    return container_exec.spawn_in(container.pid, argv, confinement=container.confinement(),
                                   user=spec.effective_user,
                                   environment=dict(spec.environment),
                                   working_dir=spec.effective_working_dir, stdio=stdio,
                                   own_group=True)


class _Check:
    """A started check: its output read as it comes, its exit seen through a pidfd."""

    def __init__(self, pid: int, output: int) -> None:
        self.pid = pid
        self.output = bytearray()
        self._fd = output
        self._pidfd = os.pidfd_open(pid)
        self._loop = asyncio.get_running_loop()
        self._exited = self._loop.create_future()
        os.set_blocking(output, False)
        self._loop.add_reader(output, self._read)
        self._loop.add_reader(self._pidfd, self._on_exit)

    def _read(self) -> bool:
        """Keep the first OUTPUT_LIMIT bytes, drop the rest; False once nothing is to be had."""
        try:
            data = os.read(self._fd, 65536)
        except BlockingIOError:
            return False
        if not data:
            self._loop.remove_reader(self._fd)
            return False
        self.output += data[:max(0, OUTPUT_LIMIT - len(self.output))]
        return True

    def _on_exit(self) -> None:
        self._loop.remove_reader(self._pidfd)
        if not self._exited.done():
            self._exited.set_result(None)

    async def result(self, timeout: float) -> Result:
        try:
            await asyncio.wait_for(asyncio.shield(self._exited), timeout)
        except TimeoutError:
            self._kill()
            await self._exited
            return self._done(None, timeout)
        except asyncio.CancelledError:  # the unit stopped checking: no check outlives that
            self._kill()
            self._exited.add_done_callback(lambda _: self._done(None, timeout))
            raise
        _, status = os.waitpid(self.pid, 0)
        return self._done(process.exit_code(status), timeout)

    def _kill(self) -> None:
        """The check and what it started, not the container: its process group, which it leads
        (and which stays ours until it is reaped)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)

    def _done(self, code: int | None, timeout: float) -> Result:
        if code is None:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)
        while self._read():
            pass
        with contextlib.suppress(ValueError, OSError):
            self._loop.remove_reader(self._fd)
        os.close(self._fd)
        os.close(self._pidfd)
        return Result(code, bytes(self.output), timeout)
