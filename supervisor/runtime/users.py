"""Resolve ``user = "name" | "uid[:gid]"`` against the image's own /etc/passwd and /etc/group."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Identity:
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str
    name: str


def _read_db(path: str) -> list[list[str]]:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return [line.rstrip("\n").split(":") for line in f if line.strip()
                    and not line.startswith("#")]
    except FileNotFoundError:
        return []


def resolve(user: str, root: str = "/") -> Identity:
    """The identity ``user`` names inside the root file system at ``root``."""
    passwd = [e for e in _read_db(f"{root.rstrip('/')}/etc/passwd") if len(e) >= 7]
    group = [e for e in _read_db(f"{root.rstrip('/')}/etc/group") if len(e) >= 4]
    name_part, _, group_part = user.partition(":")
    entry: list[str] | None
    if name_part.isdigit():
        uid = int(name_part)
        entry = next((e for e in passwd if e[2] == name_part), None)
    else:
        entry = next((e for e in passwd if e[0] == name_part), None)
        if entry is None:
            raise LookupError(f"user {name_part!r} not found in the image's /etc/passwd")
        uid = int(entry[2])
    gid = int(entry[3]) if entry else uid
    if group_part:
        if group_part.isdigit():
            gid = int(group_part)
        else:
            match = next((g for g in group if g[0] == group_part), None)
            if match is None:
                raise LookupError(f"group {group_part!r} not found in the image's /etc/group")
            gid = int(match[2])
    name = entry[0] if entry else str(uid)
    extra = tuple(sorted({int(g[2]) for g in group if name in g[3].split(",")} - {gid}))
    home = entry[5] if entry else "/"
    return Identity(uid=uid, gid=gid, groups=(gid, *extra), home=home or "/", name=name)
