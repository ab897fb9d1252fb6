"""What the tests of the compiled front ends (shim/ctr-runtime.c, shim/ctrctl.c) share: a front
end built against a script that stands for the Python command, writes down each call it is
handed, then runs the real one. What was handed over, and nothing else, is in ``calls``."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from tests.conftest import REPO


def build(source: str, out: Path, fallback: Path, includes: Sequence[Path] = ()) -> Path:
    """shim/``source`` built into ``out``, handing over to ``fallback``."""
    subprocess.run(["gcc", "-O2", "-Wall", "-Wextra", "-Werror", f'-DFALLBACK="{fallback}"',
                    *(f"-I{include}" for include in includes), "-o", str(out),
                    str(REPO / "shim" / source), "-ljson-c"], check=True, capture_output=True)
    return out


class Recorded:
    """The front end ``source`` (under shim/) built into ``directory``, handing over to a
    recording script that runs ``python_command``; ``includes``: directories of its headers."""

    def __init__(self, directory: Path, source: str, python_command: Path,
                 includes: Sequence[Path] = ()) -> None:
        self.log = directory / "calls"
        script = directory / f"python-{python_command.name}"
        script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {self.log}\n'
                          f'exec {python_command} "$@"\n')
        script.chmod(0o755)
        self.binary = build(source, directory / python_command.name, script, includes)

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []
