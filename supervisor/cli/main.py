"""``ctrctl``: the command-line face of ctr."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from supervisor.cli import run
from supervisor.runtime.paths import DEFAULT_DATA_DIR, DEFAULT_STATE_DIR


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ctrctl", description="Manage ctr containers.")
    parser.add_argument("--cgroup-driver", default=os.environ.get("CTR_CGROUP_DRIVER", "auto"),
                        choices=["auto", "cgroupfs", "cgroupfs-v1", "cgroupfs-v2", "systemd"])
    parser.add_argument("--state-dir", type=Path,
                        default=Path(os.environ.get("CTR_STATE_DIR", DEFAULT_STATE_DIR)))
    parser.add_argument("--data-dir", type=Path,
                        default=Path(os.environ.get("CTR_DATA_DIR", DEFAULT_DATA_DIR)))
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    run.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except (OSError, ValueError, LookupError, RuntimeError) as exc:
        if os.environ.get("CTR_DEBUG"):
            raise
        print(f"ctrctl: {exc}", file=sys.stderr)
        return 125


if __name__ == "__main__":
    sys.exit(main())
