"""Command-line flags parsed by the same value parsers as a definition's keys."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeVar

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
