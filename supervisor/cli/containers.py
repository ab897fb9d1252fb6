"""``ctrctl`` verbs that ask ctrd about containers or tell it to change one."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any
from urllib.parse import quote

from supervisor.cli import show
from supervisor.cli.client import Client
from supervisor.cli.flags import add_limits, limit_flag
from supervisor.model import resources as limits
from supervisor.systemd import notify


def container_path(name: str, *rest: str) -> str:
    return "/".join(["/v1/containers", quote(name, safe=""), *rest])


def _list(args: argparse.Namespace) -> int:
    views: list[dict[str, Any]] = Client(args.api).call("GET", "/v1/containers")
    print(json.dumps(views, indent=2) if args.output == "json" else show.table(views))
    return 0


def _status(args: argparse.Namespace) -> int:
    view = Client(args.api).call("GET", container_path(args.name))
    print(json.dumps(view, indent=2) if args.output == "json" else show.status(view))
    return 0


def _start(args: argparse.Namespace) -> int:
    """ctrd answers once the container runs (``--wait``: once it is ready); anything else is a
    failed start. ``--service``: see ``SERVICE_HELP``."""
    sockets = notify.listen_fds() if args.service else []
    wait = args.wait or args.service
    body = {"wait": True, "sockets": [name for name, _ in sockets]} if wait else None
    view = Client(args.api).call("POST", container_path(args.name, "start"), body,
                                 fds=[fd for _, fd in sockets])
    if view["state"] != "running":
        reason = view.get("reason") or f"it is {view['state']}"
        raise RuntimeError(f"container {args.name}: did not start: {reason}")
    if args.service:
        for _, fd in sockets:
            os.close(fd)  # ctrd has them, and systemd keeps its own
        notify.notify("READY=1")  # STATUS= is ctrd's to tell (the container's, its health)
        os.execv(SLEEP, [SLEEP, "infinity"])  # the unit's main process from now on
    print(args.name)
    return 0


def _action(args: argparse.Namespace) -> int:
    Client(args.api).call("POST", container_path(args.name, args.verb))
    print(args.name)
    return 0


def _kill(args: argparse.Namespace) -> int:
    Client(args.api).call("POST", container_path(args.name, "kill"), {"signal": args.signal})
    print(args.name)
    return 0


def _update(args: argparse.Namespace) -> int:
    """The values go as typed: ctrd reads them with the parsers of the definition's keys, and
    names the key of a bad one."""
    body = {limit.name: value for limit in limits.FIELDS
            if (value := getattr(args, limit.name)) is not None}
    if not body:
        flags = ", ".join(limit_flag(limit) for limit in limits.FIELDS)
        raise ValueError(f"update: give at least one of {flags}")
    path = container_path(args.name, "resources") + ("?persist=1" if args.persist else "")
    Client(args.api).call("PATCH", path, body)
    print(args.name)
    return 0


def _reload(args: argparse.Namespace) -> int:
    answer = Client(args.api).call("POST", "/v1/reload")
    for name in answer["changed"]:
        print(name)
    return 0


SLEEP = "/bin/sleep"
SERVICE_HELP = ("run as the main process of ctr@NAME.service (Type=notify): hand the sockets "
                "systemd passed (LISTEN_FDS, socket activation) to ctrd, wait until the "
                "container is ready, tell systemd READY=1, then stay, as a sleep, while ctrd "
                "keeps the container running; implies --wait")


def configure(verb: str, p: argparse.ArgumentParser) -> None:
    if verb in ("list", "status"):
        p.add_argument("-o", "--output", choices=["text", "json"], default="text")
    if verb != "list" and verb != "reload":
        p.add_argument("name", metavar="NAME")
    if verb == "start":
        p.add_argument("--wait", action="store_true",
                       help="return once the container is ready, not only running: its "
                       'notify = "container" sent READY=1 or "healthy" passed its first health '
                       "check; fail with the reason if it dies or ready_timeout passes first")
        p.add_argument("--service", action="store_true", help=SERVICE_HELP)
    if verb == "kill":
        p.add_argument("-s", "--signal", default="KILL", metavar="SIG",
                       help="signal name or number (default: KILL)")
    if verb == "update":
        add_limits(p, parse=False)
        p.add_argument("--persist", action="store_true",
                       help="also for every later start: write the limits to a drop-in of the "
                       "definition (NAME.toml.d/50-update.toml), as systemctl set-property")
    p.set_defaults(func={"list": _list, "status": _status, "start": _start, "kill": _kill,
                         "update": _update, "reload": _reload}.get(verb, _action))
