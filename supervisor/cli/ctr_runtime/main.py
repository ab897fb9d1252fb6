"""``ctr-runtime``'s command line: runc's global flags and commands, each command's module
imported only when it runs (engines call ``state`` and ``kill`` often, and wait for them)."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from supervisor.cli.ctr_runtime.log import Log
from supervisor.cli.helpformat import HelpFormatter
from supervisor.oci.state import DEFAULT_ROOT

VERSION = "0.1.0"
SPEC = "1.2.0"

# command -> (module:function, help)
COMMANDS = {
    "create": ("create:create", "create a container from a bundle; its process waits for start"),
    "start": ("lifecycle:start", "run the process of a created container"),
    "run": ("create:run", "create and start a container (and wait for it unless --detach)"),
    "state": ("lifecycle:state", "print a container's state as the runtime spec's JSON"),
    "kill": ("lifecycle:kill", "send a signal (default SIGTERM) to the container's process"),
    "delete": ("lifecycle:delete", "delete a stopped container (--force: any)"),
    "exec": ("exec:run", "run a process in a running container"),
    "ps": ("lifecycle:ps", "list the processes of a container"),
    "pause": ("lifecycle:pause", "freeze every process of a container"),
    "resume": ("lifecycle:resume", "thaw a paused container"),
    "list": ("lifecycle:listing", "list the containers under --root"),
    "events": ("events:events", "print a container's statistics and OOM events as JSON"),
    "update": ("events:update", "change a running container's resource limits"),
    "features": ("info:features", "print what ctr-runtime implements, as JSON"),
    "spec": ("info:spec", "write a default config.json for a bundle"),
}


def _bundle_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bundle", "-b", default=".", help="the bundle directory (default: .)")
    p.add_argument("--console-socket", metavar="SOCK",
                   help="unix socket to send the terminal's master end to (process.terminal)")
    p.add_argument("--pid-file", metavar="FILE", help="write the process's host pid here")
    p.add_argument("--no-pivot", action="store_true",
                   help="move the root over / and chroot instead of pivot_root (for a ramfs)")
    p.add_argument("--no-new-keyring", action="store_true",
                   help="keep the caller's session keyring instead of a new one")
    p.add_argument("--preserve-fds", type=int, default=0, metavar="N",
                   help="pass the caller's fds 3..3+N-1 on to the process")


def _configure(name: str, p: argparse.ArgumentParser) -> None:
    if name in ("create", "run"):
        _bundle_flags(p)
    if name == "run":
        p.add_argument("--detach", "-d", action="store_true", help="return once it runs")
        p.add_argument("--keep", action="store_true", help="do not delete it when it exits")
    if name == "kill":
        p.add_argument("--all", "-a", action="store_true",
                       help="signal every process of the container, not only its first")
    if name == "delete":
        p.add_argument("--force", "-f", action="store_true",
                       help="kill it first if it is not stopped")
    if name in ("ps", "list"):
        p.add_argument("--format", "-f", choices=("table", "json"), default="table")
    if name == "list":
        p.add_argument("--quiet", "-q", action="store_true", help="only the ids")
    if name == "events":
        p.add_argument("--stats", action="store_true", help="print the statistics once")
        p.add_argument("--interval", default="5s", help="between statistics (default 5s)")
    if name == "update":
        p.add_argument("--resources", "-r", metavar="FILE",
                       help="linux.resources as JSON, from FILE or - (stdin)")
        for flag, what in (("--memory", "memory limit in bytes"),
                           ("--cpu-quota", "CPU time in µs per period"),
                           ("--cpu-period", "the period of --cpu-quota in µs"),
                           ("--cpu-share", "relative CPU share"),
                           ("--cpuset-cpus", "CPUs, e.g. 0-2"),
                           ("--pids-limit", "most processes")):
            p.add_argument(flag, help=what)
    if name == "exec":
        p.add_argument("--process", "-p", metavar="FILE",
                       help="the process as JSON (a config.json's process object)")
        p.add_argument("--tty", "-t", action="store_true", help="give it a terminal")
        p.add_argument("--detach", "-d", action="store_true", help="do not wait for it")
        p.add_argument("--pid-file", metavar="FILE")
        p.add_argument("--console-socket", metavar="SOCK")
        p.add_argument("--env", "-e", action="append", default=[], metavar="K=V")
        p.add_argument("--cwd", metavar="DIR")
        p.add_argument("--user", "-u", metavar="UID[:GID]")
        p.add_argument("--additional-gids", "-g", action="append", default=[], metavar="GID")
        p.add_argument("--no-new-privs", action="store_true")
        p.add_argument("--cap", "-c", action="append", default=[], metavar="CAP",
                       help="add a capability to the container's set")
        p.add_argument("--preserve-fds", type=int, default=0, metavar="N")
    if name == "spec":
        p.add_argument("--bundle", "-b", default=".")
        p.add_argument("--rootless", action="store_true",
                       help="a config for a container of an unprivileged user")
    if name not in ("list", "features", "spec"):
        p.add_argument("id", metavar="ID")
    if name == "kill":
        p.add_argument("signal", nargs="?", default="SIGTERM", metavar="SIGNAL")
    if name in ("exec", "ps"):
        p.add_argument("command", nargs=argparse.REMAINDER, metavar="ARG")


def parser(only: str | None = None) -> argparse.ArgumentParser:
    """The command line; with ``only``, just that command's flags (the others: not a word)."""
    p = argparse.ArgumentParser(
        prog="ctr-runtime", formatter_class=HelpFormatter,
        description="An OCI runtime with runc's command line, on ctr's runtime core.",
        epilog="podman: --runtime $(command -v ctr-runtime); containerd: runtime BinaryName.")
    p.add_argument("--root", default=str(DEFAULT_ROOT),
                   help="where the containers' state lives (default %(default)s)")
    p.add_argument("--log", metavar="FILE", help="log here instead of stderr")
    p.add_argument("--log-format", choices=("text", "json"), default="text")
    p.add_argument("--systemd-cgroup", action="store_true",
                   help='cgroupsPath is systemd\'s "slice:prefix:name" (a transient scope)')
    p.add_argument("--rootless", choices=("auto", "true", "false"), default="auto",
                   help="accepted for runc's sake; only false (auto is false for root) works")
    p.add_argument("--debug", action="store_true", help="log debug messages too")
    p.add_argument("--version", "-v", action="version",
                   version=f"ctr-runtime version {VERSION}\nspec: {SPEC}")
    commands = p.add_subparsers(dest="verb", metavar="COMMAND", required=True)
    for name, (_, text) in COMMANDS.items():
        if only is None or name == only:
            _configure(name, commands.add_parser(name, help=text, description=text,
                                                 formatter_class=HelpFormatter))
    return p


_VALUED = ("--root", "--log", "--log-format", "--rootless")  # global flags that take a value


def verb(argv: Sequence[str]) -> str | None:
    """The command of ``argv``, found before parsing so that only its parser is built (an
    engine calls ``state`` and ``kill`` often); None for none known (--help, a usage error)."""
    skip = False
    for word in argv:
        if skip:
            skip = False
        elif word in _VALUED:
            skip = True
        elif not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    args = parser(verb(words)).parse_args(words)
    log = Log(args.log, args.log_format, args.debug)
    module, function = COMMANDS[args.verb][0].split(":")
    try:
        if args.rootless == "true":
            raise RuntimeError("rootless containers are not supported by ctr-runtime")
        command: Callable[[argparse.Namespace, Log], int] = getattr(
            importlib.import_module(f"supervisor.cli.ctr_runtime.{module}"), function)
        return command(args, log)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # every failure is one message, as runc gives it
        if args.debug:
            import traceback

            log.debug(traceback.format_exc())
        log.error(str(exc) or type(exc).__name__)
        return 1


if __name__ == "__main__":
    sys.exit(main())
