"""``WWW-Authenticate`` challenges (RFC 7235) as registries send them.

Docker's token flow: a 401 names a ``Bearer`` realm, service and scope; the client (``registry``)
asks the realm for a token, with basic credentials when it has some, and retries with it. A
``Basic`` challenge (a registry behind htpasswd) wants the credentials on every request instead.
Parameters may be quoted and hold commas, so a split on "," is not enough.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_PARAM = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)\s*,?')
_SCHEME = re.compile(r"\s*([A-Za-z][A-Za-z0-9_-]*)(?=\s|$)")


@dataclass(frozen=True)
class Challenge:
    scheme: str  # lower case: "bearer", "basic"
    params: dict[str, str] = field(default_factory=dict)


def parse(header: str) -> list[Challenge]:
    """Every challenge in ``header``, in order; unparsable parts are skipped."""
    challenges: list[Challenge] = []
    position = 0
    while position < len(header):
        scheme = _SCHEME.match(header, position)
        if not scheme:
            position = header.find(",", position) + 1 or len(header)
            continue
        position = scheme.end()
        params: dict[str, str] = {}
        while True:
            param = _PARAM.match(header, position)
            if not param:
                break
            value = param.group(2)
            if value.startswith('"'):
                value = re.sub(r"\\(.)", r"\1", value[1:-1])
            params[param.group(1).lower()] = value
            position = param.end()
        challenges.append(Challenge(scheme.group(1).lower(), params))
        while position < len(header) and header[position] in ", ":
            position += 1
    return challenges
