"""What the flags of ``ctrctl run`` give, whichever way the container is started: the run's
options as typed (``supervisor.model.runoptions``), whether it reads ctrctl's stdin, the signals
passed on to it, and a refused value shown as argparse shows one."""

from __future__ import annotations

import argparse
import os
import signal
import sys

FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
                     signal.SIGUSR1, signal.SIGUSR2)
# Flags of ctrctl's own side, not options of the container (model.runoptions.KEYS)
CLIENT_ONLY = frozenset({"quiet", "pool", "bridge", "interactive", "local", "daemon", "help",
                         "bundle"})


def options(args: argparse.Namespace) -> dict[str, object]:
    """The run's options as typed (``supervisor.model.runoptions``), the ones given only."""
    parser: argparse.ArgumentParser = args.parser
    given: dict[str, object] = {}
    for action in parser._actions:
        value = getattr(args, action.dest, None)
        if action.dest not in CLIENT_ONLY and value not in (None, False, []):
            given[action.dest] = value
    # Only the first "--" ends the options: any later one is the command's own.
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    given.pop("command", None)
    if command:
        given["command"] = command
    if args.tty or (not command and sys.stdin.isatty()):  # no command: the classic shell
        given["tty"] = True
        term = os.environ.get("TERM")
        if term and not any(str(e).startswith("TERM=") for e in args.env):
            given["env"] = [*args.env, f"TERM={term}"]  # the container's terminal is ours
    # Named here, so ctrctl knows its container even if ctrd goes away before it answers.
    given.setdefault("name", f"run-{os.urandom(4).hex()}")
    given["cwd"] = os.getcwd()
    return given


def interactive(args: argparse.Namespace) -> bool:
    """Whether the container reads ctrctl's stdin: asked for, or the classic shell."""
    return bool(args.interactive or not args.command)


def bad_option(args: argparse.Namespace, key: str, reason: str) -> None:
    """Refuse a value as argparse refuses one of a flag it reads itself: usage, exit 2."""
    parser: argparse.ArgumentParser = args.parser
    for action in parser._actions:
        if action.dest == key:
            name = "/".join(action.option_strings) or action.metavar or action.dest
            parser.error(f"argument {name}: {reason.removeprefix(f'{key}: ')}")
