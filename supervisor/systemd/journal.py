"""Container output as native journal entries, as Docker's journald log driver writes them.

journald attributes a line on a stdout stream to the cgroup of the process that wrote it, so a
container in its scope cannot log as ``ctr@NAME.service`` through that unit's stream. A root
sender may name the unit itself: entries with ``OBJECT_SYSTEMD_UNIT=ctr@NAME.service`` show in
``journalctl -u ctr@NAME`` (measured on systemd 252), and ``CONTAINER_NAME=NAME`` matches every
container however it was started. The native protocol is one datagram per entry on
/run/systemd/journal/socket (systemd's ``sd_journal_send`` format, documented in
systemd.journal-fields(7) and the journal's native protocol page).
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Mapping

SOCKET = "/run/systemd/journal/socket"
# info, err: as Docker's driver and systemd's streams; warning for ctrd's notes (health checks)
PRIORITY = {"stdout": 6, "stderr": 3, "health": 4}
MAX_MESSAGE = 48 * 1024  # below the datagram limit; longer lines are cut, not dropped


def encode(fields: Mapping[str, str | bytes]) -> bytes:
    """One entry: ``KEY=VALUE\\n``, or for a value with a newline ``KEY\\n`` + 64-bit LE length +
    value + ``\\n``."""
    parts = []
    for key, value in fields.items():
        data = value.encode() if isinstance(value, str) else value
        if b"\n" in data:
            parts.append(key.encode() + b"\n" + struct.pack("<Q", len(data)) + data + b"\n")
        else:
            parts.append(key.encode() + b"=" + data + b"\n")
    return b"".join(parts)


def container_fields(name: str, stream: str, unit: str | None) -> dict[str, str]:
    """The fields every line of one container's ``stream`` carries; ``unit``: the systemd unit
    the container belongs to (``ctr@NAME.service``), if any."""
    fields = {"PRIORITY": str(PRIORITY[stream]), "SYSLOG_IDENTIFIER": name,
              "CONTAINER_NAME": name, "CTR_STREAM": stream}
    if unit:
        fields["OBJECT_SYSTEMD_UNIT"] = unit
    return fields


class JournalWriter:
    """One datagram socket to journald; ``send`` writes one line as one entry."""

    def __init__(self, path: str = SOCKET) -> None:
        self.path = path
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    def send(self, message: bytes, fields: Mapping[str, str]) -> None:
        self._sock.sendto(encode({**fields, "MESSAGE": message[:MAX_MESSAGE]}), self.path)

    def close(self) -> None:
        self._sock.close()
