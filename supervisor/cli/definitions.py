"""``ctrctl check`` and ``ctrctl cat``: definitions read here, with the loader ctrd uses, so an
administrator can check a file before installing it, with no ctrd running."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from supervisor.config import loader
from supervisor.config.definition import Definition

POOL_ENV = "CTR_NETWORK_POOL"


def _load(args: argparse.Namespace, target: str) -> Definition:
    """A definition by name from the search path, or from a file (a path, or ``*.toml``)."""
    pool = os.environ.get(POOL_ENV, loader.DEFAULT_POOL)
    if "/" in target or target.endswith(loader.SUFFIX):
        return loader.load_file(Path(target), data_dir=args.data_dir, pool=pool)
    return loader.load(target, loader.search_path(args.config_dir), data_dir=args.data_dir,
                       pool=pool)


def _check(args: argparse.Namespace) -> int:
    """Every problem of every definition checked, one per line; status 1 if there is any."""
    if args.target is None:
        path = loader.search_path(args.config_dir)
        definitions, errors = loader.load_all(
            path, data_dir=args.data_dir, pool=os.environ.get(POOL_ENV, loader.DEFAULT_POOL))
        valid = sorted(definitions)
        if not definitions and not errors:
            print(f"no definitions in {', '.join(str(d) for d in path)}")
    else:
        try:
            valid, errors = [_load(args, args.target).name], {}
        except loader.DefinitionError as exc:
            valid, errors = [], {args.target: exc}
    for name in valid:
        print(f"{name}: ok")
    for error in errors.values():
        print(error, file=sys.stderr)
    return 1 if errors else 0


def _cat(args: argparse.Namespace) -> int:
    print(loader.render(_load(args, args.name)), end="")
    return 0


def configure(verb: str, p: argparse.ArgumentParser) -> None:
    if verb == "check":
        p.add_argument("target", nargs="?", metavar="NAME|FILE",
                       help="a definition's name, or a file (default: every definition)")
        p.set_defaults(func=_check)
    else:
        p.add_argument("name", metavar="NAME|FILE")
        p.set_defaults(func=_cat)
