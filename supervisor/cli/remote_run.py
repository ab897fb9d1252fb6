"""``ctrctl run`` handed to ctrd, as ``docker run`` hands its container to dockerd.

ctrctl sends the run's options as typed with its stdin, stdout and stderr (``POST
/v1/containers/run``, the descriptors riding on the request: ``supervisor.daemon.runs``): the
slave of a pty of its own with ``-t``, its own stdin with ``-i``, else /dev/null, and its own
stdout and stderr. ctrd starts and supervises the container; PID 1 writes straight into
ctrctl's streams and reads its pty. ctrctl then relays that pty to its terminal, forwards the
signals it gets (``kill``; SIGTERM and SIGINT also kill the container ``--stop-timeout`` later,
as alone), waits for the end (``wait``, whose pending answer also ends the relay), and removes
the instance. If ctrd restarts meanwhile, the container runs on, adopted by the next ctrd;
ctrctl waits for it and asks again.

It imports only the standard library's light modules and ``supervisor.cli.wire``: everything
else happens in ctrd, which is what makes a start through ctrd cheap for the client.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import time

from supervisor.cli import terminal, wire
from supervisor.cli.runargs import FORWARDED_SIGNALS, bad_option, interactive
from supervisor.runtime import tty

RECONNECT_TIMEOUT = 60.0  # how long ctrctl waits for a ctrd that went away to come back
RECONNECT_POLL = 0.05


def _container(name: str, action: str = "") -> str:
    return f"/v1/containers/{name}{f'/{action}' if action else ''}"


class _Forwarder:
    """The signals ctrctl gets, to PID 1 through ctrd; held while the start is under way, or
    while ctrd is away, and passed on once it can be."""

    def __init__(self, args: argparse.Namespace, stop_timeout: object) -> None:
        self._args = args
        self._stop_timeout = stop_timeout  # as typed: read only if a signal asks for it
        self.name: str | None = None
        self._held: list[int] = []
        self._killing = False
        for sig in FORWARDED_SIGNALS:
            signal.signal(sig, self._on_signal)

    def started(self, name: str) -> None:
        self.name = name
        self.flush()

    def flush(self) -> None:
        held, self._held = self._held, []
        for signum in held:
            self._forward(signum)

    def _on_signal(self, signum: int, _frame: object) -> None:
        self._held.append(signum)
        if self.name is not None:
            self.flush()

    def _forward(self, signum: int) -> None:
        assert self.name is not None
        try:
            wire.call(self._args.api.socket, "POST", _container(self.name, "kill"),
                      {"signal": signum})
        except wire.Unreachable:
            self._held.append(signum)  # again once ctrd is back
            return
        except wire.ApiError:
            return  # it has just ended
        if signum in (signal.SIGTERM, signal.SIGINT) and not self._killing:
            self._arm_kill()

    def _arm_kill(self) -> None:
        """SIGKILL to PID 1 (its pid namespace with it) ``--stop-timeout`` after a SIGTERM or
        SIGINT, as alone: a command as PID 1 ignores signals it has no handler for."""
        import threading

        from supervisor.model.runoptions import DEFAULT_STOP_TIMEOUT
        from supervisor.model.units import duration

        self._killing = True
        text = self._stop_timeout
        timer = threading.Timer(DEFAULT_STOP_TIMEOUT if text is None else duration(text),
                                self._forward, (signal.SIGKILL,))
        timer.daemon = True
        timer.start()


def _until_back(args: argparse.Namespace, name: str) -> None:
    """Once ctrd answers again after it went away (restarted, say); RuntimeError if it is not
    back within RECONNECT_TIMEOUT."""
    print(f"ctrctl: lost ctrd at {args.api.socket}; waiting for it to come back (container {name} "
          "runs on)", file=sys.stderr)
    deadline = time.monotonic() + RECONNECT_TIMEOUT
    while True:
        try:
            wire.call(args.api.socket, "GET", _container(name))
            return
        except wire.Unreachable:
            if time.monotonic() > deadline:
                raise RuntimeError(f"ctrd at {args.api.socket} did not come back within "
                                   f"{RECONNECT_TIMEOUT:g}s; container {name} may still run"
                                   ) from None
            time.sleep(RECONNECT_POLL)


def _wait(args: argparse.Namespace, name: str, master: int | None,
          forwarder: _Forwarder) -> int:
    """Relay the terminal (if any) until the container ends; its exit status."""
    while True:
        try:
            sock = wire.send(args.api.socket, "POST", _container(name, "wait"))
            if master is not None:
                tty.relay(master, sock.fileno())  # until ctrd answers: it has ended
            view = wire.answer(sock)
        except wire.Unreachable:
            _until_back(args, name)
            forwarder.flush()
            continue
        except wire.ApiError as exc:
            if exc.status != 503:  # 503: ctrd is stopping
                raise
            _until_back(args, name)
            continue
        code = view.get("exit_code")
        if code is None:
            raise RuntimeError(f"container {name} ended with no exit status: "
                               f"{view.get('reason') or view.get('state')}")
        return int(code)


def _remove(args: argparse.Namespace, name: str) -> None:
    """The instance is ctrctl's: gone with the run, as a container ctrctl starts itself."""
    while True:
        try:
            wire.call(args.api.socket, "DELETE", _container(name))
            return
        except wire.Unreachable:
            _until_back(args, name)


def _start(args: argparse.Namespace, given: dict[str, object],
           fds: tuple[int, int, int]) -> None:
    """Have ctrd start the container of ``given``; a bad option refused as its flag. If ctrd
    goes away before it answers, the next one knows whether the container was made."""
    name = str(given["name"])
    try:
        wire.call(args.api.socket, "POST", "/v1/containers/run", given, fds)
    except wire.ApiError as exc:
        key = exc.detail.get("key") if isinstance(exc.detail, dict) else None
        if exc.status == 400 and key:
            bad_option(args, str(key), str(exc))
        raise
    except wire.Absent:
        raise
    except wire.Unreachable:
        _until_back(args, name)  # ApiError 404 if it was not


def run(args: argparse.Namespace, given: dict[str, object]) -> int:
    """Hand the run's options ``given`` (``run.options``) to ctrd and follow the container to
    its end; its exit status. ``wire.Absent`` if no ctrd answers (nothing was started)."""
    if args.api.tcp is not None:
        raise ValueError("ctrctl run gives ctrd the container's stdio over its Unix socket, "
                         "which a tcp:// host cannot carry: run it there, or use --local")
    with contextlib.ExitStack() as stack:
        stdio = terminal.open_stdio(stack, terminal=bool(given.get("tty")),
                                    interactive=interactive(args))
        forwarder = _Forwarder(args, given.get("stop_timeout"))
        _start(args, given, stdio.fds or (0, 1, 2))
        name = str(given["name"])
        forwarder.started(name)
        with contextlib.ExitStack() as raw:
            if stdio.master is not None:
                raw.enter_context(tty.raw_terminal(0))
            code = _wait(args, name, stdio.master, forwarder)
        _remove(args, name)
    return code
