"""The course graders' verbs: ``upload``, ``cfginfo``, ``launch``, ``destroy``, ``destroyall``.

They go through the graders' routes on ctrd's socket and print what the graders read on stdout:
``Success[: INSTANCE]`` or ``Failure[: REASON]``, exit status 0 or 1. ``destroy`` and
``destroyall`` print a bare ``Failure``, the reason going to stderr. ``upload`` checks the file
here first, so its ``Failure`` says what is wrong with it; ctrd's own answer, 409 with no body,
then only means the configuration is stored already.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from urllib.parse import quote

from supervisor.cli.client import ApiError, Client
from supervisor.graders import configuration


def _failure(reason: str | None = None) -> int:
    print("Failure" if reason is None else f"Failure: {reason}")
    return 1


def _upload(args: argparse.Namespace) -> int:
    try:
        text = Path(args.file).read_text()
        config = configuration.parse(text, args.data_dir)
    except (OSError, ValueError) as exc:
        return _failure(f"{args.file}: {exc}")
    try:
        Client(args.api).call("POST", "/config", json.loads(text))
    except ApiError as exc:
        if exc.status == 409:
            return _failure(f"configuration {config.key} exists already")
        return _failure(str(exc))
    except OSError as exc:
        return _failure(str(exc))
    print("Success")
    return 0


def _cfginfo(args: argparse.Namespace) -> int:
    for name in Client(args.api).call("GET", "/cfginfo")["files"]:
        print(name)
    return 0


def _launch(args: argparse.Namespace) -> int:
    body = {"name": args.name, "major": args.major, "minor": args.minor}
    try:
        answer = Client(args.api).call("POST", "/launch", body)
    except ApiError as exc:
        if exc.status == 404:
            return _failure(f"no configuration {args.name}-{args.major}-{args.minor}")
        return _failure(str(exc))
    except OSError as exc:
        return _failure(str(exc))
    print(f"Success: {answer['instance']}")
    return 0


def _destroy(args: argparse.Namespace) -> int:
    path = "/destroyall" if args.verb == "destroyall" else f"/destroy/{quote(args.instance, '')}"
    try:
        Client(args.api).call("DELETE", path)
    except ApiError as exc:
        reason = f"no instance {args.instance}" if exc.status == 404 else str(exc)
        print(f"ctrctl: {reason}", file=sys.stderr)
        return _failure()
    except OSError as exc:
        print(f"ctrctl: {exc}", file=sys.stderr)
        return _failure()
    print("Success")
    return 0


def configure(verb: str, p: argparse.ArgumentParser) -> None:
    if verb == "upload":
        p.add_argument("file", metavar="FILE", help="a configuration in the graders' JSON")
    elif verb == "launch":
        for field in ("name", "major", "minor"):
            p.add_argument(field, metavar=field.upper())
    elif verb == "destroy":
        p.add_argument("instance", metavar="INSTANCE")
    p.set_defaults(func={"upload": _upload, "cfginfo": _cfginfo, "launch": _launch}.get(
        verb, _destroy))
