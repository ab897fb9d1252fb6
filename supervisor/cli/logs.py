"""``ctrctl logs [-f] [-n N] NAME``: a container's output, as ctrd keeps it."""

from __future__ import annotations

import argparse
import os
import sys

from supervisor.cli.client import Client
from supervisor.cli.containers import container_path


def _logs(args: argparse.Namespace) -> int:
    query = f"follow={int(args.follow)}&tail={args.tail}"
    out = sys.stdout.buffer
    try:
        for chunk in Client(args.api).stream(container_path(args.name, f"logs?{query}")):
            out.write(chunk)
            out.flush()
    except BrokenPipeError:  # ``ctrctl logs web | head``: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
    return 0


def _lines(text: str) -> str:
    if text != "all" and not text.isdigit():
        raise argparse.ArgumentTypeError(f"not a number of lines: {text!r}")
    return text


def configure(_verb: str, p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--follow", action="store_true",
                   help="keep printing new output until the container stops")
    p.add_argument("-n", "--tail", type=_lines, default="all", metavar="N",
                   help="only the last N lines (default: all)")
    p.add_argument("name", metavar="NAME")
    p.set_defaults(func=_logs)
