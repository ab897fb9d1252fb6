"""Image references as docker and podman spell them: ``[DOMAIN/]PATH[:TAG][@DIGEST]``.

The grammar is the distribution project's (``reference/regexp.go``): the first component is a
domain if it holds a ``.`` or a ``:`` or is ``localhost``; otherwise the reference is a *short
name*, which podman (unlike docker, which always prepends ``docker.io``) resolves through the
search registries of registries.conf. A reference without tag or digest means ``:latest``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_TAG = "latest"
DOCKER_HUB = "docker.io"
_MAX_NAME = 255

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_DOMAIN = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:.]+\])(?::[0-9]+)?")
_TAG = re.compile(r"[\w][\w.-]{0,127}")
DIGEST = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}")
_SHA256 = re.compile(r"sha256:[a-f0-9]{64}")


class ReferenceError(ValueError):
    """A string that is not an image reference; the message says which part is wrong."""


@dataclass(frozen=True)
class Reference:
    """A parsed reference. ``domain`` is "" for a short name (see ``qualify``)."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def is_short(self) -> bool:
        return not self.domain

    @property
    def repository(self) -> str:
        """``DOMAIN/PATH``: the name without tag and digest."""
        return f"{self.domain}/{self.path}" if self.domain else self.path

    @property
    def selector(self) -> str:
        """What the registry's manifest endpoint takes: the digest if there is one, else the tag."""
        return self.digest or self.tag or DEFAULT_TAG

    def qualify(self, domain: str) -> Reference:
        """This short name on registry ``domain`` (docker.io's one-component names get
        ``library/``, as both docker and podman do)."""
        path = self.path
        if domain == DOCKER_HUB and "/" not in path:
            path = f"library/{path}"
        return Reference(domain, path, self.tag, self.digest)

    def with_tag(self) -> Reference:
        """The reference with ``:latest`` filled in when it names neither tag nor digest."""
        if self.tag or self.digest:
            return self
        return Reference(self.domain, self.path, DEFAULT_TAG)

    def __str__(self) -> str:
        text = self.repository
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse(text: str) -> Reference:
    """Parse ``text``; a short name stays short (domain ""), nothing is defaulted but the tag
    (added only when there is no digest either, as podman does)."""
    if not text:
        raise ReferenceError("empty image reference")
    rest, digest = text, None
    if "@" in rest:
        rest, _, digest = rest.partition("@")
        if not DIGEST.fullmatch(digest):
            raise ReferenceError(f"{text!r}: invalid digest {digest!r} (want sha256:<64 hex>)")
        if digest.startswith("sha256:") and not _SHA256.fullmatch(digest):
            raise ReferenceError(f"{text!r}: invalid sha256 digest {digest!r}")
    tag = None
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1:]
        if not _TAG.fullmatch(tag):
            raise ReferenceError(f"{text!r}: invalid tag {tag!r}")
    domain, path = _split_domain(text, rest)
    if not _PATH.fullmatch(path):
        raise ReferenceError(
            f"{text!r}: invalid repository name {path!r} (lower-case letters, digits and "
            "separators '.', '_', '__', '-', components joined by '/')")
    if len(f"{domain}/{path}") > _MAX_NAME:
        raise ReferenceError(f"{text!r}: repository name longer than {_MAX_NAME} characters")
    ref = Reference(domain, path, tag, digest)
    return ref.with_tag()


def _split_domain(text: str, name: str) -> tuple[str, str]:
    first, sep, remainder = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        if not _DOMAIN.fullmatch(first):
            raise ReferenceError(f"{text!r}: invalid registry host {first!r}")
        return first, remainder
    if any(c.isupper() for c in name):
        raise ReferenceError(f"{text!r}: repository names must be lower-case")
    return "", name
