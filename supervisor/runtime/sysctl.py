"""A container's namespaced kernel parameters, set by its PID 1 once it is in its namespaces.

A parameter of a network, IPC or UTS namespace is the one of the namespace of the process that
writes it, whichever /proc it writes through: so PID 1 writes them through the host's /proc while
that is still its view, before its root is assembled and /proc/sys made read-only in it. The
model (``supervisor.model.sysctl``) refuses every parameter of no such namespace, and the bundle's
parser one of a namespace the container shares with the host.
"""

from __future__ import annotations

from collections.abc import Iterable


def apply(settings: Iterable[tuple[str, str]]) -> None:
    for name, value in settings:
        path = "/proc/sys/" + name.replace(".", "/")
        try:
            with open(path, "w") as f:
                f.write(value)
        except OSError as exc:
            raise OSError(exc.errno, f"sysctl {name}={value}: {exc.strerror}") from None
