"""Names: of containers (in paths, cgroup and unit names), hosts, users, network interfaces."""

from __future__ import annotations

import re
from typing import Any

from supervisor.model.errors import Invalid
from supervisor.model.values import string

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
_HOSTNAME_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?")
_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\$?")
_IFNAME = re.compile(r"[^/\s:]{1,15}")


def container_name(value: Any) -> str:
    """A container's name: one path component, a cgroup and a systemd unit name alike, so it is
    kept to a safe alphabet and to what a unit name leaves room for."""
    name = string(value)
    if not _NAME.fullmatch(name):
        raise Invalid(f"invalid container name {name!r}: use 1-63 letters, digits, '_', '.' or "
                      "'-', starting with a letter or digit")
    return name


def is_container_name(text: str) -> bool:
    return bool(_NAME.fullmatch(text))


def hostname(value: Any) -> str:
    """A host name the kernel takes (at most 64 bytes) made of RFC 1123 labels."""
    name = string(value)
    if not name or len(name) > 64 or not all(
        _HOSTNAME_LABEL.fullmatch(label) and len(label) <= 63 for label in name.split(".")
    ):
        raise Invalid(f"not a valid host name: {name!r} (letters, digits and '-' in "
                      "dot-separated labels, at most 64 characters)")
    return name


def user(value: Any) -> str:
    """A user as ``docker run --user`` takes it: a name or uid, optionally ``:group`` or
    ``:gid``; resolved inside the image when the container starts."""
    text = string(value)
    if not all(_USER.fullmatch(part) for part in text.split(":", 1)):
        raise Invalid(f"not a user: {text!r} (use a name or uid, optionally :group or :gid)")
    return text


def interface(value: Any) -> str:
    """A network interface name the kernel takes."""
    name = string(value)
    if not _IFNAME.fullmatch(name) or name in (".", ".."):
        raise Invalid(f"not an interface name: {name!r} (1-15 characters, no '/', ':' or space)")
    return name
