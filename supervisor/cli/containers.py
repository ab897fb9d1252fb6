"""``ctrctl`` verbs that ask ctrd about containers or tell it to change one."""

from __future__ import annotations

import argparse
import json
from typing import Any
from urllib.parse import quote

from supervisor.cli import show
from supervisor.cli.client import Client
from supervisor.cli.flags import add_limits, limit_flag
from supervisor.model import resources as limits


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
    """ctrd answers once the container runs; anything else is a failed start."""
    view = Client(args.api).call("POST", container_path(args.name, "start"))
    if view["state"] != "running":
        reason = view.get("reason") or f"it is {view['state']}"
        raise RuntimeError(f"container {args.name}: did not start: {reason}")
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


def configure(verb: str, p: argparse.ArgumentParser) -> None:
    if verb in ("list", "status"):
        p.add_argument("-o", "--output", choices=["text", "json"], default="text")
    if verb != "list" and verb != "reload":
        p.add_argument("name", metavar="NAME")
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
