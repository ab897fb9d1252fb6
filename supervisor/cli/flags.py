"""Command-line flags parsed by the same value parsers as a definition's keys."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from supervisor.model import resources as limits

T = TypeVar("T")


def flag(parse: Callable[[str], T]) -> Callable[[str], T]:
    """``parse`` as an argparse ``type``: a bad value's usage error gives the parser's reason,
    where argparse would print only "invalid value"."""
    def convert(text: str) -> T:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    convert.__name__ = getattr(parse, "__name__", "value")
    return convert


def limit_flag(limit: limits.Limit) -> str:
    return "--" + limit.name.replace("_", "-")


def add_limits(parser: argparse.ArgumentParser, parse: bool = True) -> None:
    """A flag per limit of the model (``--memory-max``...), read by its parser; with ``parse``
    false the text is kept as typed, for ctrd to read with the same parser."""
    from supervisor.model import resources as limits  # not for every verb: dataclasses, units

    for limit in limits.FIELDS:
        parser.add_argument(limit_flag(limit), type=flag(limit.parse) if parse else str,
                            metavar=limit.metavar, help=limit.help.replace("%", "%%"))
