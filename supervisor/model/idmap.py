"""A user namespace's id maps: the lines of its uid_map and gid_map, each (inside, outside,
count), as an OCI bundle's ``uidMappings``/``gidMappings`` and podman's ``--uidmap`` give them,
and as ctr's own user namespaces make them (one range from container id 0).

The kernel takes at most 340 lines a map and refuses ranges that overlap inside or outside
(user_namespaces(7)). The parser checks the same, so a bad map is an error naming the line, not
EINVAL from a write during create. Container id 0 must be mapped in both: PID 1 sets the
container up as its root.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from supervisor.model.errors import Invalid

Line = tuple[int, int, int]  # inside, outside, count
MAX_LINES = 340  # the kernel's limit since Linux 4.15
_PAGE = 4096  # a map is written whole in one write(2) shorter than a page
_END = 2**32 - 1  # (uid_t)-1 is no id, so a range ends below it


@dataclass(frozen=True)
class IdMap:
    """Host ids of a user namespace's ids: ``uids`` and ``gids`` are its maps' lines."""

    uids: tuple[Line, ...]
    gids: tuple[Line, ...]

    @classmethod
    def one_range(cls, base: int, size: int) -> IdMap:
        """Container ids ``0 .. size-1`` as host ids ``base ..``, for uids and gids alike."""
        return cls(((0, base, size),), ((0, base, size),))

    def host_uid(self, inside: int) -> int | None:
        return _outside(self.uids, inside)

    def host_gid(self, inside: int) -> int | None:
        return _outside(self.gids, inside)

    @property
    def root(self) -> tuple[int, int]:
        """The host uid and gid of container root (mapped: the parser sees to it)."""
        uid, gid = self.host_uid(0), self.host_gid(0)
        assert uid is not None and gid is not None
        return uid, gid

    def text(self, kind: str) -> str:
        """The content of ``uid_map`` (kind ``uid``) or ``gid_map`` (``gid``)."""
        lines = self.uids if kind == "uid" else self.gids
        return "".join(f"{inside} {outside} {count}\n" for inside, outside, count in lines)

    def __str__(self) -> str:
        """podman's ``--uidmap``/``--gidmap`` notation, for messages."""
        def words(lines: tuple[Line, ...]) -> str:
            return ",".join(":".join(map(str, line)) for line in lines)
        return f"uids {words(self.uids)}, gids {words(self.gids)}"

    def to_record(self) -> dict[str, list[list[int]]]:
        return {"uids": [list(line) for line in self.uids],
                "gids": [list(line) for line in self.gids]}

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> IdMap:
        if "base" in data:  # an earlier ctr's record: its one range
            return cls.one_range(data["base"], data["size"])
        return cls(*(tuple((a, b, c) for a, b, c in data[kind]) for kind in ("uids", "gids")))


def _outside(lines: tuple[Line, ...], inside: int) -> int | None:
    return next((outside + inside - first for first, outside, count in lines
                 if first <= inside < first + count), None)


def id_lines(lines: Iterable[Line]) -> tuple[Line, ...]:
    """One map's lines, checked as the kernel would, in order of their container ids; an error is
    located at the line's index as given."""
    result = tuple(lines)
    if not result:
        raise Invalid("no range given: at least one is needed")
    if len(result) > MAX_LINES:
        raise Invalid(f"{len(result)} ranges: the kernel takes at most {MAX_LINES}")
    for index, (inside, outside, count) in enumerate(result):
        if count < 1:
            raise Invalid(f"the range {inside}:{outside}:{count} is empty", (index,))
        if max(inside, outside) + count > _END:
            raise Invalid(f"the range {inside}:{outside}:{count} ends beyond the last id "
                          f"({_END - 1})", (index,))
        for column, side in enumerate(("container", "host")):
            start = (inside, outside)[column]
            for other, line in enumerate(result[:index]):
                if start < line[column] + line[2] and line[column] < start + count:
                    raise Invalid(f"its {side} ids overlap those of range {other} "
                                  f"({':'.join(map(str, line))})", (index,))
    if (size := sum(len(f"{a} {b} {c}\n") for a, b, c in result)) >= _PAGE:
        raise Invalid(f"the map is {size} bytes written out: the kernel takes less than {_PAGE}")
    return tuple(sorted(result))  # as the kernel shows a map of more than five


def id_map(uids: Iterable[Line], gids: Iterable[Line], *, root: bool = True) -> IdMap:
    """Both maps of a user namespace; with ``root``, container root must be mapped in each (an
    idmapped mount's need not). An error is located at ``("uids", index)`` or ``("gids", ...)``."""
    maps = []
    for kind, lines in (("uids", uids), ("gids", gids)):
        try:
            checked = id_lines(lines)
        except Invalid as exc:
            raise Invalid(str(exc), (kind, *exc.at)) from None
        if root and _outside(checked, 0) is None:
            raise Invalid("container id 0 is not mapped: ctr sets the container up as its root",
                          (kind,))
        maps.append(checked)
    return IdMap(*maps)
