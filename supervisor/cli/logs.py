"""``ctrctl logs [-f] [-n N] [--since T] [--until T] [-t] [-p] NAME``: a container's output, as
ctrd keeps it (docker's and kubectl's flags)."""

from __future__ import annotations

import argparse
import os
import sys
from urllib.parse import urlencode

from supervisor.cli.client import Client
from supervisor.cli.containers import container_path
from supervisor.cli.flags import flag
from supervisor.cli.helpformat import RawDescriptionHelpFormatter
from supervisor.model.logs import instant, unix_text

EPILOG = """\
The output is kept in DATA_DIR/logs/NAME.log and its rotated files NAME.log.1 ... ([logs]
max_size and max_files; 10M x 3 by default), across the container's runs.

times (--since, --until): 2026-12-01T10:00:00Z or with an offset, 2026-12-01 10:00 (local
time), 1764583200 (UNIX seconds), or a duration before now: 10m, 1h30min, 90s."""


def _logs(args: argparse.Namespace) -> int:
    query = {"follow": int(args.follow), "tail": args.tail, "timestamps": int(args.timestamps),
             "previous": int(args.previous)}
    query.update({key: unix_text(value) for key, value in (("since", args.since),
                                                           ("until", args.until))
                  if value is not None})
    out = sys.stdout.buffer
    try:
        for chunk in Client(args.api).stream(container_path(args.name,
                                                            f"logs?{urlencode(query)}")):
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
    p.epilog = EPILOG
    p.formatter_class = RawDescriptionHelpFormatter
    p.add_argument("-f", "--follow", action="store_true",
                   help="keep printing new output until the container stops")
    p.add_argument("-n", "--tail", type=_lines, default="all", metavar="N",
                   help="only the last N lines (default: all)")
    p.add_argument("--since", type=flag(instant), metavar="TIME",
                   help="only lines written at or after TIME")
    p.add_argument("--until", type=flag(instant), metavar="TIME",
                   help="only lines written at or before TIME (with -f: follow until then)")
    p.add_argument("-t", "--timestamps", action="store_true",
                   help="each line after the time it was written (RFC 3339, UTC)")
    p.add_argument("-p", "--previous", action="store_true",
                   help="the output of the container's previous run (the one before the last)")
    p.add_argument("name", metavar="NAME")
    p.set_defaults(func=_logs)
