"""Messages of ctr-runtime as runc writes them: logrus's text (``time="..." level=error
msg="..."``) or, with ``--log-format json``, one JSON object a line, which podman and containerd
read back from ``--log FILE`` to report why a command failed."""

from __future__ import annotations

import json
import sys

from supervisor.oci.state import TYPE_CHECKING, now

if TYPE_CHECKING:
    from typing import TextIO

LEVELS = ("debug", "info", "warning", "error")


class Log:
    def __init__(self, path: str | None = None, form: str = "text", debug: bool = False) -> None:
        self._path = path
        self._form = form
        self._lowest = 0 if debug else 1
        self._file: TextIO | None = None

    def _out(self) -> TextIO:
        if self._file is None:
            self._file = sys.stderr if self._path in (None, "", "/dev/stderr") else \
                open(self._path, "a")  # noqa: SIM115  (kept for the command's whole run)
        return self._file

    def write(self, level: str, message: str) -> None:
        if LEVELS.index(level) < self._lowest:
            return
        when = now()
        if self._form == "json":
            line = json.dumps({"level": level, "msg": message, "time": when})
        else:
            line = f'time="{when}" level={level} msg={json.dumps(message)}'
        out = self._out()
        out.write(line + "\n")
        out.flush()

    def debug(self, message: str) -> None:
        self.write("debug", message)

    def warning(self, message: str) -> None:
        self.write("warning", message)

    def error(self, message: str) -> None:
        self.write("error", message)
        if self._file is not None and self._file is not sys.stderr:
            print(f"ctr-runtime: {message}", file=sys.stderr)  # the caller's stderr too
