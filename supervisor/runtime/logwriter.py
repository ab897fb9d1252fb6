"""PID 1's stdout and stderr as pipes to its shim, which writes them to the log files
(shim/ctr-shim.c, ``--log-dir``; why the shim and not PID 1 or ctrd: supervisor.daemon.logs).

The intermediate of the spawn handshake makes the pipes before it forks PID 1: PID 1 gets the
write ends as fds 1 and 2, the shim the read ends and the log files' directory, so that no
process but the container's holds a write end and the shim reads to the end of what they wrote.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class LogTarget:
    """Where and how a container's output is kept: ``directory``/``name``, rotated at
    ``max_size`` keeping ``max_files``; each record also into the pipe ``journal`` (the write
    end of ctrd's relay to the journal), if given."""

    directory: str
    name: str
    max_size: int
    max_files: int
    journal: int | None = None


class LogPipes:
    """In the intermediate: PID 1's two pipes, and what the shim is given to write the log."""

    def __init__(self, target: LogTarget, place: Callable[[int], int]) -> None:
        """``place`` moves a new descriptor where it does not meet those PID 1 is passed."""
        self.target = target
        self.directory = place(os.open(target.directory, os.O_DIRECTORY | os.O_CLOEXEC))
        out, err = os.pipe2(os.O_CLOEXEC), os.pipe2(os.O_CLOEXEC)
        self.reads = (place(out[0]), place(err[0]))
        self.writes = (place(out[1]), place(err[1]))  # PID 1's stdout and stderr

    def shim_arguments(self) -> list[str]:
        """After PID 1 is forked: our write ends closed, the shim's descriptors inherited across
        its exec, and its options naming them."""
        for fd in self.writes:
            os.close(fd)
        target = self.target
        options: dict[str, int | str] = {
            "--log-dir": self.directory, "--log-name": target.name,
            "--max-size": target.max_size, "--max-files": target.max_files,
            "--stdout": self.reads[0], "--stderr": self.reads[1]}
        inherited = [self.directory, *self.reads]
        if target.journal is not None:
            options["--journal"] = target.journal
            inherited.append(target.journal)
        for fd in inherited:
            os.set_inheritable(fd, True)
        return [part for option, value in options.items() for part in (option, str(value))]
