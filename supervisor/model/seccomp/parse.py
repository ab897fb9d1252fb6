"""Profiles from JSON: docker/podman's profile files and the OCI runtime spec's ``linux.seccomp``.

Both formats share ``defaultAction``, ``defaultErrnoRet``, ``architectures``, ``flags`` and
``syscalls[]`` (``names``, ``action``, ``errnoRet``, ``args[]``); docker's adds ``archMap``, the
older single ``name``, ``comment`` and the conditional ``includes``/``excludes``. Unknown members
are refused rather than ignored (a misspelt ``defaultActon`` must not leave a filter that allows
everything), and every refusal names the member: ``syscalls[3].args[0].op: unknown operator``.
"""

from __future__ import annotations

import errno
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from supervisor.model import capabilities as caps
from supervisor.model.seccomp import arches
from supervisor.model.seccomp.profile import (
    ACTIONS,
    FLAGS,
    OPERATORS,
    Action,
    Condition,
    Match,
    Profile,
    Rule,
)

T = TypeVar("T")

_OCI_TOP = frozenset({"defaultAction", "defaultErrnoRet", "architectures", "flags",
                      "listenerPath", "listenerMetadata", "syscalls"})
_DOCKER_TOP = _OCI_TOP | {"archMap"}
_OCI_SYSCALL = frozenset({"names", "action", "errnoRet", "args"})
_DOCKER_SYSCALL = _OCI_SYSCALL | {"name", "comment", "includes", "excludes"}
_ARG = frozenset({"index", "value", "valueTwo", "op"})
_MATCH = frozenset({"caps", "arches", "minKernel"})
_ARCH_MAP = frozenset({"architecture", "subArchitectures"})
_MAX_ERRNO = 4095  # the kernel caps SECCOMP_RET_ERRNO data at MAX_ERRNO
_KERNEL_RE = re.compile(r"(\d+)\.(\d+)")


class ProfileError(ValueError):
    """A profile that cannot be used; the message starts with the member at fault."""


def load_profile(path: str | Path) -> Profile:
    """A docker/podman profile file, as ``docker run --security-opt seccomp=PATH`` reads it."""
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise ProfileError(f"{path}: cannot read the profile: {e}") from None
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as e:  # JSONDecodeError is a ValueError
        raise ProfileError(f"{path}: not JSON: {e}") from None
    try:
        return from_docker(document, source=str(path))
    except ProfileError as e:
        raise ProfileError(f"{path}: {e}") from None


def from_docker(document: object, source: str = "custom") -> Profile:
    """A profile in docker/podman's format (already decoded from JSON)."""
    return _profile(document, docker=True, source=source)


def from_oci(document: object) -> Profile:
    """The ``linux.seccomp`` object of an OCI bundle's config.json."""
    return _profile(document, docker=False, source="oci")


def _profile(document: object, docker: bool, source: str) -> Profile:
    top = _object(document, "", _DOCKER_TOP if docker else _OCI_TOP)
    if "defaultAction" not in top:
        raise ProfileError("defaultAction: missing")
    if top.get("listenerPath"):
        raise ProfileError("listenerPath: not supported: ctr runs no seccomp agent to notify")
    if not isinstance(top.get("listenerMetadata", ""), str):
        raise ProfileError("listenerMetadata: expected a string")
    if "architectures" in top and "archMap" in top:
        raise ProfileError("archMap: give either architectures or archMap, not both")
    return Profile(
        default_action=_action(top, "", "defaultAction", "defaultErrnoRet"),
        rules=tuple(_list(top.get("syscalls"), "syscalls",
                          lambda v, w: _rule(v, w, docker))),
        architectures=tuple(_list(top.get("architectures"), "architectures", _arch)),
        arch_map=tuple(_list(top.get("archMap"), "archMap", _arch_group)),
        flags=tuple(_list(top.get("flags"), "flags", _flag)),
        source=source,
    )


def _rule(value: object, where: str, docker: bool) -> Rule:
    entry = _object(value, where, _DOCKER_SYSCALL if docker else _OCI_SYSCALL)
    if "name" in entry and "names" in entry:
        raise ProfileError(f"{where}.name: give either name or names, not both")
    names: tuple[str, ...]
    if "name" in entry:
        names = (_string(entry["name"], f"{where}.name"),)
    else:
        names = tuple(_list(entry.get("names"), f"{where}.names", _string))
    if not names:
        raise ProfileError(f"{where}.names: missing or empty")
    if "action" not in entry:
        raise ProfileError(f"{where}.action: missing")
    _optional(entry, "comment", where, _string)
    return Rule(
        names=names,
        action=_action(entry, where, "action", "errnoRet"),
        args=tuple(_list(entry.get("args"), f"{where}.args", _condition)),
        includes=_optional(entry, "includes", where, _match) or Match(),
        excludes=_optional(entry, "excludes", where, _match) or Match(),
    )


def _action(entry: dict[str, object], where: str, key: str, errno_key: str) -> Action:
    name = _string(entry[key], _at(where, key))
    if name == "SCMP_ACT_NOTIFY":
        raise ProfileError(f"{_at(where, key)}: SCMP_ACT_NOTIFY is not supported: "
                           "ctr runs no seccomp agent")
    if name not in ACTIONS:
        raise ProfileError(f"{_at(where, key)}: unknown action {name!r}")
    code = _optional(entry, errno_key, where, lambda v, w: _integer(v, w, _MAX_ERRNO))
    if name in ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"):
        return Action(name, errno.EPERM if code is None else code)
    if code is not None:
        raise ProfileError(f"{_at(where, errno_key)}: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE "
                           f"return an errno, not {name}")
    return Action(name)


def _condition(value: object, where: str) -> Condition:
    arg = _object(value, where, _ARG)
    for key in ("index", "value", "op"):
        if key not in arg:
            raise ProfileError(f"{where}.{key}: missing")
    op = _string(arg["op"], f"{where}.op")
    if op not in OPERATORS:
        raise ProfileError(f"{where}.op: unknown operator {op!r}")
    return Condition(
        index=_integer(arg["index"], f"{where}.index", 5),
        op=op,
        value=_integer(arg["value"], f"{where}.value", 2**64 - 1),
        value_two=_optional(arg, "valueTwo", where,
                            lambda v, w: _integer(v, w, 2**64 - 1)) or 0,
    )


def _match(value: object, where: str) -> Match:
    match = _object(value, where, _MATCH)
    return Match(
        caps=tuple(_list(match.get("caps"), f"{where}.caps", _capability)),
        arches=tuple(_list(match.get("arches"), f"{where}.arches", _string)),
        min_kernel=_optional(match, "minKernel", where, _kernel),
    )


def _arch_group(value: object, where: str) -> tuple[str, tuple[str, ...]]:
    group = _object(value, where, _ARCH_MAP)
    if "architecture" not in group:
        raise ProfileError(f"{where}.architecture: missing")
    return (_arch(group["architecture"], f"{where}.architecture"),
            tuple(_list(group.get("subArchitectures"), f"{where}.subArchitectures", _arch)))


def _arch(value: object, where: str) -> str:
    name = _string(value, where)
    if name not in arches.ARCHITECTURES:
        raise ProfileError(f"{where}: unknown architecture {name!r}")
    return name


def _flag(value: object, where: str) -> str:
    name = _string(value, where)
    if name not in FLAGS:
        raise ProfileError(f"{where}: unknown or unsupported flag {name!r} "
                           f"(supported: {', '.join(sorted(FLAGS))})")
    return name


def _capability(value: object, where: str) -> str:
    name = _string(value, where)
    if name not in caps.CAPABILITIES:
        raise ProfileError(f"{where}: unknown capability {name!r}")
    return name


def _kernel(value: object, where: str) -> tuple[int, int]:
    text = _string(value, where)
    found = _KERNEL_RE.fullmatch(text)
    if not found:
        raise ProfileError(f"{where}: expected a kernel version like \"4.8\", got {text!r}")
    return int(found[1]), int(found[2])


def _object(value: object, where: str, members: frozenset[str]) -> dict[str, object]:
    if not isinstance(value, dict):
        raise ProfileError(f"{where or 'profile'}: expected an object, got {_kind(value)}")
    for key in value:
        if key not in members:
            raise ProfileError(f"{_at(where, key)}: unknown member")
    return value


def _list(value: object, where: str, item: Callable[[object, str], T]) -> list[T]:
    """A JSON array (absent or null: empty), each element read by ``item``."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ProfileError(f"{where}: expected an array, got {_kind(value)}")
    return [item(element, f"{where}[{i}]") for i, element in enumerate(value)]


def _optional(entry: dict[str, object], key: str, where: str,
              read: Callable[[object, str], T]) -> T | None:
    value = entry.get(key)
    return None if value is None else read(value, _at(where, key))


def _string(value: object, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ProfileError(f"{where}: expected a non-empty string, got {_kind(value)}")
    return value


def _integer(value: object, where: str, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise ProfileError(f"{where}: expected an integer from 0 to {maximum}, got "
                           f"{_kind(value)}")
    return value


def _at(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _kind(value: object) -> str:
    if isinstance(value, str):
        return f"{value!r}" if value else "an empty string"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return repr(value)
    return {dict: "an object", list: "an array", bool: "a boolean", type(None): "null"}.get(
        type(value), type(value).__name__)
