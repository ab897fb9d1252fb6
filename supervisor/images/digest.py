"""Content digests (``sha256:HEX``) and a reader that verifies one while the data streams by.

Every blob is checked as it is read, never after the fact: a reader counts and hashes what
passes, refuses more bytes than the descriptor's size the moment they arrive, and ``verify()``
at the end compares size and digest, so a wrong or truncated blob is an error before anything
made from it is committed.
"""

from __future__ import annotations

import hashlib
import re
from typing import Protocol

_DIGEST = re.compile(r"(sha256|sha512):([a-f0-9]+)")
_LENGTHS = {"sha256": 64, "sha512": 128}


class DigestError(ValueError):
    """Content that does not match its digest or size, or a digest ctr cannot check."""


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def parse(digest: str) -> tuple[str, str]:
    """``(algorithm, hex)`` of a digest ctr can verify."""
    match = _DIGEST.fullmatch(digest)
    if not match or len(match.group(2)) != _LENGTHS[match.group(1)]:
        raise DigestError(f"unsupported or malformed digest {digest!r} (want sha256:<64 hex>)")
    return match.group(1), match.group(2)


def of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def check(data: bytes, digest: str, what: str) -> None:
    algorithm, expected = parse(digest)
    actual = hashlib.new(algorithm, data).hexdigest()
    if actual != expected:
        raise DigestError(f"{what}: content has digest {algorithm}:{actual}, expected {digest}")


class VerifyingReader:
    """Reads from ``source``, hashing with ``digest``'s algorithm (sha256 when None)."""

    def __init__(self, source: Readable, digest: str | None = None, size: int | None = None,
                 what: str = "blob") -> None:
        algorithm = parse(digest)[0] if digest else "sha256"
        self._source = source
        self._hash = hashlib.new(algorithm)
        self._algorithm = algorithm
        self.digest = digest
        self.size = size
        self.what = what
        self.count = 0

    def read(self, size: int = -1, /) -> bytes:
        data = self._source.read(size)
        self.count += len(data)
        if self.size is not None and self.count > self.size:
            raise DigestError(f"{self.what}: more than the {self.size} bytes its descriptor says")
        self._hash.update(data)
        return data

    def drain(self, chunk: int = 1 << 20) -> None:
        """Read the rest, so the digest covers everything (a tar's trailing padding, say)."""
        while self.read(chunk):
            pass

    @property
    def actual(self) -> str:
        return f"{self._algorithm}:{self._hash.hexdigest()}"

    def verify(self) -> str:
        """The digest of what was read; raises if it is not the expected size and digest."""
        if self.size is not None and self.count != self.size:
            raise DigestError(
                f"{self.what}: truncated: got {self.count} of {self.size} bytes")
        if self.digest is not None and self.actual != self.digest:
            raise DigestError(
                f"{self.what}: content has digest {self.actual}, expected {self.digest}")
        return self.actual
