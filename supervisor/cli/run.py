"""``ctrctl run``: one container in the foreground, through ctrd when it runs, else alone.

The classic "container shell": with no command on a terminal it gives an interactive /bin/sh.
Either way ctrctl relays the container's terminal, forwards signals to it, and exits with the
command's status once everything is removed. When ctrd answers on its socket, ctrctl hands it
the container as ``docker run`` hands one to dockerd (``remote_run``: ctrd starts and watches
it, ctrctl stays on its stdio); without one (or with ``--local``) it starts the container itself
and is its parent (``local_run``).

No flag value is read here: the values go as typed, under their keys, to the parsers of
``supervisor.model.runoptions``, in ctrd or in ctrctl, so a flag means the same either way and a
bad value is refused in the same words, as argparse would refuse it. That also keeps this
module light: reaching ctrd imports no runtime, model or HTTP library.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from supervisor.cli.flags import add_limits
from supervisor.cli.runargs import bad_option, options
from supervisor.model import defaults

DESCRIPTION = """\
Run a command in a new container, in the foreground: ctrctl relays its terminal (-t), forwards
signals to it and exits with its status (128+N if killed by signal N). When ctrd answers on its
socket, ctrctl hands the container to it (as docker run hands one to dockerd): ctrd starts and
supervises it, `ctrctl list` shows it, and its stdio are ctrctl's own. With no ctrd (or
--local), ctrctl starts the container itself. Either way every flag means the same."""


class Parser(argparse.ArgumentParser):
    """Declares the limit flags (``--memory-max``..., ``model.resources.FIELDS``) only for a
    command line that may name one, or asks for help: their table loads the model's parsers
    and the dataclasses module (10-15 ms), which a start through ctrd has no other use for in
    ctrctl (ctrd reads the values)."""

    _limits = False

    def parse_known_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                         namespace: argparse.Namespace | None = None,
                         ) -> tuple[argparse.Namespace, list[str]]:
        if not self._limits and (args is None or self._names_others(args)):
            self.add_limits()
        return super().parse_known_args(args, namespace)

    def format_help(self) -> str:
        self.add_limits()
        return super().format_help()

    def add_limits(self) -> None:
        if not self._limits:
            self._limits = True
            add_limits(self, parse=False)

    def _names_others(self, args: Sequence[str]) -> bool:
        """Whether an option before the command is none of those declared (or is -h)."""
        known = {name for action in self._actions for name in action.option_strings}
        for arg in args:
            if arg == "--":
                return False
            if arg.startswith("-") and arg != "-" and (
                    arg.partition("=")[0] not in known or arg in ("-h", "--help")):
                return True
        return False


def configure(_verb: str, p: argparse.ArgumentParser) -> None:
    p.description = DESCRIPTION
    where = p.add_mutually_exclusive_group()
    where.add_argument("--local", action="store_true",
                       help="start the container here, even when ctrd runs")
    where.add_argument("--daemon", action="store_true",
                       help="hand it to ctrd, and fail if none answers (default: ctrd if it "
                       "answers, else --local)")
    p.add_argument("--name", help="container name (default: run-RANDOM)")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--image",
                        help="an OCI image (a reference such as registry.example.com/app:1, "
                        "pulled as --pull says, or an image of the store), a name under "
                        "DATA_DIR/images, or a directory, tarball or file-system image; a local "
                        "image wins over a registry's (default: busybox)")
    p.add_argument("--pull", metavar="missing|always|never",
                   help="when to pull the image from its registry: if the store lacks it "
                   "(default), always, or never")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress while pulling (ctrd pulls without showing any)")
    p.add_argument("--entrypoint", metavar="CMD",
                   help="replaces the image's Entrypoint: a program, or a JSON array "
                   "('[\"/bin/sh\", \"-c\"]'); \"\" for none. Without a command the image's "
                   "Cmd is dropped too, as docker does")
    source.add_argument("--rootfs", help="a directory to use as the read-only lower layer")
    source.add_argument("--bundle", metavar="DIR",
                        help="an OCI bundle (DIR/config.json and its root), run as "
                        "ctr-runtime runs it, by ctrctl itself: the whole container is the "
                        "bundle's, so only --name applies")
    p.add_argument("--hostname")
    p.add_argument("--network", metavar="veth|none|host", help="default: veth")
    p.add_argument("--address", help="CIDR address for veth (default: next free in the pool)")
    p.add_argument("--publish", "-p", action="append", default=[],
                   metavar="[HOST_IP:]HOST:CONTAINER[/tcp|udp]",
                   help="publish a container port on the host, as docker's -p: on every host "
                   "address (IPv4 and IPv6) or on HOST_IP (127.0.0.1, [::1]); repeatable")
    p.add_argument("--pool", help="address pool of the veth network of a container ctrctl "
                   f"starts itself: given, it does (default $CTR_NETWORK_POOL or {defaults.POOL}"
                   "; ctrd's containers are on its own pool)")
    p.add_argument("--bridge", help="bridge holding that pool's gateway: given, ctrctl starts "
                   f"the container itself (default $CTR_BRIDGE or {defaults.BRIDGE})")
    # the limit flags: Parser.add_limits
    p.add_argument("--user", help="name or uid[:gid] (default: the image's User, else root)")
    p.add_argument("--workdir",
                   help="working directory (default: the image's WorkingDir, else /)")
    p.add_argument("--env", "-e", action="append", default=[], metavar="K=V")
    p.add_argument("--mount", "-v", action="append", default=[], metavar="SRC:DST[:ro]",
                   help="bind SRC (relative: to the current directory) at DST")
    p.add_argument("--tmpfs", action="append", default=[], metavar="DST[:SIZE]")
    p.add_argument("--device", action="append", default=[],
                   metavar="HOST[:CONTAINER][:PERMS]",
                   help="give the container a host device (docker's --device), e.g. /dev/fuse")
    p.add_argument("--read-only", action="store_true", help="no writable layer over the image")
    p.add_argument("--privileged", action="store_true",
                   help="every capability and device, no system-call filter, nothing masked")
    p.add_argument("--security-opt", action="append", default=[], metavar="OPT",
                   help="seccomp=unconfined|default|PROFILE.json, "
                   "no-new-privileges[=true|false] (as docker's)")
    p.add_argument("--cap-add", action="append", default=[], metavar="CAP",
                   help="a capability besides docker's default set (or ALL)")
    p.add_argument("--cap-drop", action="append", default=[], metavar="CAP",
                   help="a capability of the default set to drop (or ALL)")
    p.add_argument("--init", action="store_true",
                   help="ctr's tiny init as PID 1: reaps orphans, forwards every signal")
    p.add_argument("--userns", action="store_true",
                   help="a new user namespace: container root is an unprivileged range of host "
                   "ids (as namespaces.user = true)")
    p.add_argument("--rm", action="store_true", help="discard the writable layer afterwards")
    p.add_argument("--stop-timeout", metavar="DURATION",
                   help="after SIGTERM/SIGINT, kill every process of the container this much "
                   "later (a command as PID 1 ignores signals it has no handler for; default "
                   "10s)")
    p.add_argument("-i", "--interactive", action="store_true", help="keep stdin attached")
    p.add_argument("-t", "--tty", action="store_true", help="give the container a terminal")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD [ARG...]")
    p.set_defaults(func=run, parser=p)


def run(args: argparse.Namespace) -> int:
    """Hand the container to ctrd, or start it here; exit with its status (``_exit``)."""
    given = options(args)
    if args.bundle:
        from supervisor.cli import bundle_run

        _exit(bundle_run.run(args, given))
    local = args.local or args.pool is not None or args.bridge is not None
    if args.daemon and local:
        bad_option(args, "pool" if args.pool is not None else "bridge",
                   "is for a container ctrctl starts itself, not ctrd's (--daemon)")
    if not local:
        from supervisor.cli import remote_run
        from supervisor.cli.wire import Absent

        try:
            _exit(remote_run.run(args, given))
        except Absent:
            if args.daemon:
                raise
    from supervisor.cli import local_run

    _exit(local_run.run(args, given))


def _exit(code: int) -> NoReturn:
    """End at once: the container is gone and nothing is left to tidy, while the interpreter's
    shutdown (freeing every module the start loaded) would add 10-80 ms to every run."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)

