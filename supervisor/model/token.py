"""The bearer token of ctrd's TCP listener: what its file may hold, read alike by ctrd and ctrctl.

A message never quotes the token: it is a secret, and errors end up in logs and terminals.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any

from supervisor.model.errors import Invalid
from supervisor.model.values import string

MIN_LENGTH = 16  # a token one could guess is no lock
MAX_BYTES = 4096  # read no more of a file named by mistake (a log, /dev/zero)
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")  # RFC 6750, section 2.1


def token(value: Any) -> str:
    """A token as ``Authorization: Bearer`` carries it; whitespace around it (a file's final
    newline) is not part of it."""
    text = string(value).strip()
    if not _B64TOKEN.fullmatch(text):
        raise Invalid("not a bearer token: use letters, digits and -._~+/ (RFC 6750), "
                      "on one line")
    if len(text) < MIN_LENGTH:
        raise Invalid(f"a bearer token of {len(text)} characters is too short to be secret "
                      f"(at least {MIN_LENGTH})")
    return text


def new_token() -> str:
    """256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def read_token(path: Path) -> str:
    """The token in ``path``; the error names the file."""
    try:
        with path.open("rb") as file:
            data = file.read(MAX_BYTES + 1)
    except OSError as e:
        raise Invalid(f"API token file {path}: {e.strerror or e}") from None
    try:
        if len(data) > MAX_BYTES:
            raise Invalid(f"longer than {MAX_BYTES} bytes")
        return token(data.decode("ascii", errors="replace"))
    except Invalid as e:
        raise Invalid(f"API token file {path}: {e}") from None
