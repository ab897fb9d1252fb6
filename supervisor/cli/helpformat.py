"""argparse's help formatters, told the terminal's width.

Left to itself argparse imports shutil to ask it, in every formatter it makes, and it makes one
for each argument added (to check its metavar): 2-3 ms of every ``ctrctl`` and ``ctr-runtime``
command, though only ``--help`` and a usage error ever print.
"""

from __future__ import annotations

import argparse
import os


def _width() -> int:
    try:
        columns = int(os.environ.get("COLUMNS", "")) or os.get_terminal_size(1).columns
    except (ValueError, OSError):
        columns = 80
    return columns - 2


class HelpFormatter(argparse.HelpFormatter):
    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        super().__init__(prog, indent_increment, max_help_position, width or _width())


class RawDescriptionHelpFormatter(argparse.RawDescriptionHelpFormatter, HelpFormatter):
    """Descriptions and epilogs printed as written (tables of verbs, examples)."""
