"""The OCI lifecycle inside PID 1's set-up: ``create`` returns with PID 1 built and waiting,
``start`` (another process, later) lets it exec, and the hooks run at their points.

create (ctr-runtime)                          PID 1
spawn ─────────────────────────────────────> namespaces, cgroups, root assembled
<── "H" (socket) ─────────────────────────── (only when there are hooks before the command)
prestart, createRuntime hooks
the state ─────────────────────────────────> createContainer hooks; pivot_root ...
"go" (the spawn handshake) ────────────────> the command found? a new session keyring;
<── the terminal's master (console socket) ── (process.terminal: made from its own devpts)
<── EOF on the status pipe ───────────────── stderr over the status pipe: "created"
exit                                         wait until the exec FIFO is readable ...
start (ctr-runtime, any time later)
open the exec FIFO, write "0" ─────────────> ... read; startContainer hooks; exec
unlink it: "running"; poststart hooks

The FIFO and its two sides are runtime/execfifo.py's. Until its exec PID 1 is the interpreter,
which as PID 1 of its namespace ignores every signal it has no handler for: it gets handlers
that end it, so ``kill`` of a created container works as with runc.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from supervisor.model import defaults
from supervisor.runtime import console, execfifo, hooks, syscalls

if TYPE_CHECKING:  # ``start`` imports this module for ``release`` alone, and must start fast
    from supervisor.model.spec import Hooks

State = Callable[[int, str], Mapping[str, Any]]  # (PID 1's host pid, status) -> the OCI state
# What ends the waiting PID 1, as these signals' default would end any other process.
_ENDING = (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGUSR1,
           signal.SIGUSR2, signal.SIGALRM)
_HOOKS_PLEASE = b"H"


class Lifecycle:
    """One container's create/start, given to ``Options.steps`` (see ``process.Steps``)."""

    def __init__(self, fifo: str, hooked: Hooks, state: State, new_keyring: bool = True,
                 console: int | None = None, console_size: tuple[int, int] | None = None) -> None:
        """``console``: a unix socket the process's terminal is sent over (runtime/console),
        the caller's to close."""
        self._console = console
        self._console_size = console_size
        self._hooks = hooked
        self._state = state
        self._new_keyring = new_keyring
        self._document: Mapping[str, Any] = {}
        self._fifo = execfifo.opened(fifo)
        before = hooked.prestart or hooked.create_runtime or hooked.create_container \
            or hooked.start_container
        self._ours: socket.socket | None = None
        self._theirs: socket.socket | None = None
        if before:
            self._ours, self._theirs = socket.socketpair(
                socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)

    # -- the caller (ctr-runtime create) ------------------------------------------------------

    def spawned(self, pid: int) -> None:
        """PID 1 exists: run the hooks of the runtime's namespaces when it is at that point."""
        os.close(self._fifo)
        if self._ours is None or self._theirs is None:
            return
        self._theirs.close()
        with self._ours:
            if self._ours.recv(1) != _HOOKS_PLEASE:
                return  # PID 1 failed; its reason is on the status pipe
            state = self._state(pid, "creating")
            hooks.run(self._hooks.prestart, "prestart", state)
            hooks.run(self._hooks.create_runtime, "createRuntime", state)
            self._ours.send(json.dumps(self._state(pid, "created")).encode())

    # -- PID 1 ----------------------------------------------------------------------------------

    def fds(self) -> tuple[int, ...]:
        """What PID 1 keeps through its set-up."""
        return (self._fifo, *(() if self._theirs is None else (self._theirs.fileno(),)),
                *(() if self._console is None else (self._console,)))

    def before_pivot(self) -> None:
        """Its root assembled: the caller's hooks, then createContainer's, in the container's
        namespaces with the runtime's file system still in view."""
        if self._theirs is None:
            return
        if self._ours is not None:
            self._ours.detach()  # the caller's end, which PID 1 closed with all it inherited
        self._theirs.send(_HOOKS_PLEASE)
        document = self._theirs.recv(1 << 20)
        self._theirs.close()
        if not document:
            os._exit(127)  # a hook of the caller's failed, or the caller is gone: it says why
        self._document = json.loads(document)
        hooks.run(self._hooks.create_container, "createContainer", self._document)

    def before_exec(self, argv: tuple[str, ...], environment: Mapping[str, str],
                    status_w: int) -> None:
        """After the spawn's "go": report "created" to ``create`` and wait for ``start``."""
        search = environment.get("PATH", defaults.PATH)
        if "/" not in argv[0] and shutil.which(argv[0], path=search) is None:
            raise FileNotFoundError(f'exec: "{argv[0]}": executable file not found in $PATH')
        if self._new_keyring:
            syscalls.join_session_keyring()
        if self._console is not None:
            console.attach(self._console, self._console_size, console=True)
        # From here on a failure is reported on stderr: the status pipe's end is replaced by it,
        # which closes the pipe, the caller's sign that the container is created.
        os.dup2(2, status_w, inheritable=False)
        for sig in _ENDING:
            signal.signal(sig, _end)
        execfifo.wait(self._fifo)
        for sig in _ENDING:
            signal.signal(sig, signal.SIG_DFL)
        hooks.run(self._hooks.start_container, "startContainer", self._document)


def _end(signum: int, _frame: object) -> None:
    os._exit(128 + signum)

