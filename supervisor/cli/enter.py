"""``ctrctl exec`` and ``ctrctl shell``: a new process inside a running container.

ctrd only says where the container is (the host pid of its PID 1) and how its command runs (user,
environment, working directory); ctrctl enters it itself, so the new process is ctrctl's own child
with ctrctl's terminal, as with ``docker exec`` but without a daemon in the data path.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
from typing import Any

from supervisor.cli import terminal
from supervisor.cli.client import Client
from supervisor.cli.containers import container_path
from supervisor.model.security import security_from_json
from supervisor.runtime.exec import spawn_in
from supervisor.runtime.process import exit_code
from supervisor.runtime.security import confinement

FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)
KEYBOARD_SIGNALS = (signal.SIGINT, signal.SIGQUIT)


def _pass_signals(pid: int, same_terminal: bool) -> None:
    """Signals sent to ctrctl end (or reach) the command, as if it were run directly.

    Without a terminal of its own the command is in ctrctl's process group, so Ctrl-C already
    reaches it from the terminal: ctrctl ignores those rather than deliver them twice.
    """
    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    for sig in FORWARDED_SIGNALS:
        signal.signal(sig, forward)
    if same_terminal:
        for sig in KEYBOARD_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)


def _execute(args: argparse.Namespace, command: list[str]) -> int:
    info: dict[str, Any] = Client(args.api).call("GET", container_path(args.name, "exec"))
    # Confined as the container's own processes are: its capabilities, no_new_privs and filter.
    confined = confinement(security_from_json(info["security"]), info["privileged"],
                           args.data_dir / "cache" / "seccomp")
    with contextlib.ExitStack() as stack:
        stdio = terminal.open_stdio(stack, terminal=args.tty, interactive=args.interactive)
        pid = spawn_in(info["pid"], command, confinement=confined, user=info["user"],
                       environment=info["environment"], working_dir=info["working_dir"],
                       stdio=stdio.fds, tty=stdio.master is not None)
        _pass_signals(pid, same_terminal=stdio.master is None)
        if stdio.master is not None:
            terminal.relay_until_exit(stdio.master, pid)
        _, status = os.waitpid(pid, 0)
    return exit_code(status)


def _exec(args: argparse.Namespace) -> int:
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise ValueError("exec: no command given (ctrctl exec NAME -- CMD [ARG...])")
    return _execute(args, command)


def _shell(args: argparse.Namespace) -> int:
    args.interactive = args.tty = True
    return _execute(args, ["/bin/sh"])


def configure(verb: str, p: argparse.ArgumentParser) -> None:
    if verb == "exec":
        p.add_argument("-i", "--interactive", action="store_true", help="keep stdin attached")
        p.add_argument("-t", "--tty", action="store_true", help="give the command a terminal")
    p.add_argument("name", metavar="NAME")
    if verb == "exec":
        p.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD [ARG...]")
    p.set_defaults(func=_exec if verb == "exec" else _shell)
