"""``ctrctl check`` and ``ctrctl cat``: definitions read here, with the loader and the settings
ctrd uses (config path, data dir and address pool, from flags, environment and ctrd.toml), so an
administrator can check a file before installing it, with no ctrd running. ``check`` also looks
for what would fail the start of a valid definition (``supervisor.runtime.preflight``): a command
the image does not have, a bind source that does not exist."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from supervisor.config import loader
from supervisor.config.daemon import DaemonConfig, daemon_config
from supervisor.config.definition import Definition
from supervisor.runtime import preflight


def _settings(args: argparse.Namespace) -> DaemonConfig:
    return daemon_config(args.flags, os.environ)


def _load(args: argparse.Namespace, target: str) -> Definition:
    """A definition by name from the search path, or from a file (a path, or ``*.toml``)."""
    settings = _settings(args)
    if "/" in target or target.endswith(loader.SUFFIX):
        return loader.load_file(Path(target), data_dir=settings.data_dir, pool=settings.pool)
    return loader.load(target, settings.config_path, data_dir=settings.data_dir,
                       pool=settings.pool)


def _check(args: argparse.Namespace) -> int:
    """Every problem of every definition checked, one per line; status 1 if there is any."""
    settings = _settings(args)
    if args.target is None:
        definitions, errors = loader.load_all(settings.config_path, data_dir=settings.data_dir,
                                              pool=settings.pool)
        if not definitions and not errors:
            print(f"no definitions in {', '.join(str(d) for d in settings.config_path)}")
    else:
        try:
            definition = _load(args, args.target)
            definitions, errors = {definition.name: definition}, {}
        except loader.DefinitionError as exc:
            definitions, errors = {}, {args.target: exc}
    for name, definition in sorted(definitions.items()):
        if problems := preflight.problems(definition.spec, settings.data_dir):
            errors[name] = loader.DefinitionError.of(
                [definition.problem(key, reason) for key, reason in problems])
        else:
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
