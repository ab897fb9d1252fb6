"""``ctrctl run`` handed to ctrd: a container of the run's options, on the client's own stdio.

As ``docker run`` hands the container to dockerd, ``ctrctl run`` sends its options (as typed,
``supervisor.model.runoptions``) with its stdin, stdout and stderr (SCM_RIGHTS on the request,
``supervisor.api.fds``): the slave of its pty with ``-t``, its own streams with ``-i``, else
/dev/null and its stdout and stderr. PID 1 gets those very descriptors, so ctrctl stays the
terminal relay and ctrd copies no byte: a ctrd restart loses none, and the container's output
reaches the client's pipe or file as if ctrctl had started it. ctrd keeps the options in the
unit's record (``Record.run``), from which a restarted ctrd makes the same spec again; ctrctl
forwards signals (``kill``), waits for the end (``wait``) and removes the instance.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from supervisor.daemon.view import Invalid
from supervisor.model import runoptions
from supervisor.model.errors import Invalid as InvalidValue

STREAMS = ("stdin", "stdout", "stderr")


class OptionError(Invalid):
    """A bad option of the run; ``detail`` names its key, which ctrctl shows as its flag."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}" if key else reason)
        self.detail = {"key": key}


def read(options: Mapping[str, Any], pool: str) -> runoptions.Run:
    """The run of ``options`` (``pool``: ctrd's), or OptionError naming the key at fault."""
    try:
        return runoptions.read(options, pool)
    except InvalidValue as exc:
        raise OptionError(str(exc.at[0]) if exc.at else "", str(exc)) from None


@dataclass
class Attached:
    """The client's stdin, stdout and stderr for the next PID 1, ctrd's to close once it has
    them; ``console`` is their terminal's path when they are one (``-t``)."""

    fds: tuple[int, int, int]
    console: str | None = None

    @classmethod
    def take(cls, fds: Sequence[int], terminal: bool) -> Attached:
        """The three descriptors sent, checked (``terminal``: a terminal, the container's
        controlling one); closed if refused. A directory is refused: as stdin it would give the
        container a way out of its root (``fchdir``, ``openat``)."""
        try:
            if len(fds) != len(STREAMS):
                raise OptionError("stdio", f"{len(fds)} descriptor(s) sent with the request: "
                                  "give stdin, stdout and stderr, or none")
            for fd, stream in zip(fds, STREAMS, strict=True):
                if stat.S_ISDIR(os.fstat(fd).st_mode):
                    raise OptionError("stdio", f"the {stream} sent is a directory")
            if terminal and not os.isatty(fds[0]):
                raise OptionError("tty", "the stdin sent is not a terminal")
            console = os.ttyname(fds[0]) if terminal else None
        except BaseException:
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)
            raise
        return cls((fds[0], fds[1], fds[2]), console)

    def close(self) -> None:
        for fd in set(self.fds):
            with contextlib.suppress(OSError):
                os.close(fd)
