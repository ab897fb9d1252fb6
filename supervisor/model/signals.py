"""Signals by name or number, as ``kill -s`` and the OCI and image configs spell them."""

from __future__ import annotations

import signal as signals
from typing import Any

from supervisor.model.errors import Invalid
from supervisor.model.values import string


class Signal(int):
    """A signal number that prints as its name (``SIGTERM``, ``SIGRTMIN+3``)."""

    def __str__(self) -> str:
        if signals.SIGRTMIN < self <= signals.SIGRTMAX:
            return f"SIGRTMIN+{self - signals.SIGRTMIN}"
        return signals.Signals(self).name

    __repr__ = __str__


SIGTERM = Signal(signals.SIGTERM)
SIGKILL = Signal(signals.SIGKILL)


def signal(value: Any) -> Signal:
    """``SIGTERM``, ``TERM``, ``term``, ``SIGRTMIN+3``, ``15`` or ``"15"``."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        if value not in signals.valid_signals():
            raise Invalid(f"not a signal number: {value} (1-{int(signals.SIGRTMAX)})")
        return Signal(value)
    if not isinstance(value, str):
        raise Invalid(f"not a signal: {value!r} (use a name such as SIGTERM, or a number)")
    name = string(value).strip().upper()
    name = name if name.startswith("SIG") else f"SIG{name}"
    if name.startswith("SIGRTMIN+") and name[9:].isdigit():
        number = signals.SIGRTMIN + int(name[9:])
        if number <= signals.SIGRTMAX:
            return Signal(number)
    elif name in signals.Signals.__members__:
        return Signal(signals.Signals[name])
    raise Invalid(f"not a signal: {value!r} (use e.g. SIGTERM, SIGQUIT, SIGINT)")
