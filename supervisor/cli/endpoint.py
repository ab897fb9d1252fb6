"""Where ctrd answers ctrctl: its Unix socket, or its TCP listener (``--host tcp://HOST:PORT``).

Made for every verb before it runs, so it imports nothing heavy itself: the model's parsers only
for a ``--host`` or a token; the connection is ``supervisor.cli.client``'s (``ctrctl run``
reaches ctrd without it, ``supervisor.cli.wire``).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

TCP, UNIX = "tcp://", "unix://"


def host(value: str) -> tuple[str, int] | Path:
    """``--host``, as docker's ``-H``: ``tcp://HOST:PORT`` or ``unix:///PATH``."""
    from supervisor.model.errors import Invalid
    from supervisor.model.network import host_port

    if value.startswith(TCP):
        return host_port(value.removeprefix(TCP))
    if value.startswith(UNIX) and value.removeprefix(UNIX).startswith("/"):
        return Path(value.removeprefix(UNIX))
    raise Invalid(f"not tcp://HOST:PORT or unix:///PATH: {value!r}")


class Endpoint(NamedTuple):
    """Where ctrd answers: its Unix socket, or (``tcp`` set) its TCP listener, which wants the
    token in ``token_file`` and, when any TLS file is given, TLS."""

    socket: Path
    tcp: tuple[str, int] | None = None
    token_file: Path | None = None
    tls_ca: Path | None = None  # verifies ctrd's certificate (without it: the system's CAs)
    tls_cert: Path | None = None  # ctrctl's own certificate, for a ctrd that asks for one
    tls_key: Path | None = None

    def __str__(self) -> str:
        if self.tcp is None:
            return str(self.socket)
        address, port = self.tcp
        return f"{TCP}{f'[{address}]' if ':' in address else address}:{port}"

    def headers(self) -> dict[str, str]:
        if self.tcp is None or self.token_file is None:
            return {}
        from supervisor.model.token import read_token

        return {"Authorization": f"Bearer {read_token(self.token_file)}"}
