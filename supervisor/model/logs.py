"""A container's log: how large its files grow and how many are kept (``[logs]``), the record
each piece of output is stored as, and the instants ``--since`` and ``--until`` name.

The files hold records of the CRI log format (Kubernetes' and podman's ``k8s-file``), one a
line: ``TIMESTAMP STREAM TAG CONTENT``, the time in RFC 3339 with nanoseconds and in UTC, the
stream ``stdout`` or ``stderr``, the tag ``F`` for content that ends a line (its newline is the
record's own) or ``P`` for a part of one that goes on in a later record. Tools that read
Kubernetes' logs (promtail, fluent-bit, vector) read these files as they are. A ``P`` record
with no content is ctr's mark of where a run of the container begins: a reader of the format
sees nothing, ``ctrctl logs --previous`` finds the previous run by it. Timestamps of one width
in UTC compare as the strings they are, so filtering by time needs no parsing of dates.
"""

from __future__ import annotations

import datetime
import re
import time
from dataclasses import dataclass
from typing import Any, Literal

from supervisor.model.errors import Invalid, describe
from supervisor.model.units import duration, size
from supervisor.model.values import integer

Stream = Literal["stdout", "stderr"]
STREAMS: tuple[Stream, ...] = ("stdout", "stderr")
FULL, PARTIAL = b"F", b"P"
MIN_MAX_SIZE = 64 << 10  # a file holds at least a few records of the longest (16 KiB of output)
DEFAULT_MAX_SIZE = 10 << 20  # what docker's users learn to set (moby #40207), as a default
DEFAULT_MAX_FILES = 3
MAX_FILES = 1000
_STAMP_RE = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z\Z")
_OURS = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z std(?:out|err) [FP] ")
_UNIX_RE = re.compile(r"(\d+)(?:\.(\d+))?\Z")
_FRACTION_RE = re.compile(r"[.,](\d+)")  # of a second: datetime keeps six digits, we nine


def max_size(value: Any) -> int:
    """The size at which NAME.log is rotated: a size (``10M``), at least 64K."""
    amount = size(value)
    if amount < MIN_MAX_SIZE:
        raise Invalid(f"must be at least 64K, got {value!r}")
    return amount


max_files = integer(1, MAX_FILES)  # NAME.log and the rotated NAME.log.1 .. NAME.log.(N-1)


# -- records --------------------------------------------------------------------------------------

def stamp(nanoseconds: int | None = None) -> bytes:
    """A record's time, ``2026-12-01T10:11:12.123456789Z``, of nanoseconds since the epoch
    (now if None)."""
    whole, fraction = divmod(time.time_ns() if nanoseconds is None else nanoseconds, 10**9)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)).encode() + \
        b".%09dZ" % fraction


@dataclass(frozen=True)
class Record:
    """One line of a log file. ``stamp`` None: a line that is not a record (a file written
    before ctr stamped its lines), shown as it is and never left out by time."""

    stamp: bytes | None
    stream: bytes
    partial: bool
    content: bytes  # without the record's newline

    @property
    def begins_run(self) -> bool:
        return self.partial and not self.content

    @property
    def text(self) -> bytes:
        """The output this record stands for."""
        return self.content if self.partial else self.content + b"\n"


def record(stream: Stream, content: bytes, when: bytes | None = None,
           partial: bool = False) -> bytes:
    """The record of ``content`` (no newline in it), as ctr-shim writes them."""
    tag = PARTIAL if partial else FULL
    return b"%s %s %s %s\n" % (when or stamp(), stream.encode(), tag, content)


def run_mark(when: bytes | None = None) -> bytes:
    """The record that begins a run: a part of a line with nothing in it."""
    return record("stdout", b"", when, partial=True)


def parse_record(line: bytes) -> Record:
    """A line of a log file (without its newline) as a record; a line that is not one as the
    output it holds, untimed."""
    if _OURS.match(line):  # the shim's own layout, the one that matters for speed
        return Record(line[:30], line[31:37], line[38] == 0x50, line[40:])
    when, _, rest = line.partition(b" ")
    stream, _, rest = rest.partition(b" ")
    tags, _, content = rest.partition(b" ")
    tag = tags.split(b":", 1)[0]
    if stream not in (b"stdout", b"stderr") or tag not in (FULL, PARTIAL) \
            or not _STAMP_RE.match(when):
        return Record(None, b"stdout", False, line)
    return Record(when, stream, tag == PARTIAL, content)


# -- instants -------------------------------------------------------------------------------------

def instant(value: Any, now: int | None = None) -> int:
    """Nanoseconds since the epoch from what ``--since`` and ``--until`` take, as docker reads
    them: a date and time in RFC 3339 / ISO 8601 (``2026-12-01T10:00:00.123456789Z``, with an
    offset, or local time without one; a date alone is its midnight), UNIX seconds
    (``1764583200.5``), or a duration that long before ``now`` (``10m``, ``1h30min``)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise Invalid(f"expected a time such as \"2026-12-01T10:00:00Z\" or \"10m\", got "
                      f"{describe(value)}")
    text = str(value).strip()
    if unix := _UNIX_RE.match(text):
        return int(unix[1]) * 10**9 + _nanoseconds(unix[2] or "")
    fraction = _FRACTION_RE.search(text)
    try:
        parsed = datetime.datetime.fromisoformat(
            text if fraction is None else text[:fraction.start()] + text[fraction.end():])
    except ValueError:
        pass
    else:  # naive: local time, as journalctl --since reads it
        return int(parsed.timestamp()) * 10**9 + _nanoseconds(fraction[1] if fraction else "")
    try:
        ago = duration(text)
    except Invalid:
        raise Invalid(f"not a time: {value!r} (use e.g. 2026-12-01T10:00:00Z, "
                      "2026-12-01 10:00, 1764583200 or 10m for ten minutes ago)") from None
    return (time.time_ns() if now is None else now) - round(ago * 10**9)


def _nanoseconds(digits: str) -> int:
    """The nanoseconds a fraction of a second's digits give (beyond nine: cut)."""
    return int(digits[:9].ljust(9, "0"))


def unix_text(nanoseconds: int) -> str:
    """``instant``'s UNIX seconds of ``nanoseconds``, exactly: what ctrctl sends to ctrd."""
    return f"{nanoseconds // 10**9}.{nanoseconds % 10**9:09d}"
