"""A container's log files as ``ctrctl logs`` reads them: NAME.log and its rotated files
(supervisor.daemon.logs says who writes them), read as the output they hold, selected by time
(``--since``, ``--until``), by run (``--previous``) and by count (``-n``), and followed while
the shim writes and rotates them.

All files are opened at once, newest first, a file met twice (rotated between two opens) taken
once: from then on a rotation renames nothing under the reader, and following goes on into the
new NAME.log once the one it holds is done. A line's time is that of its first record; the
records of a line that went on in several (a long one, or one the container wrote in pieces)
are joined per stream. The last record of NAME.log is read only once its newline is there: the
shim may be writing it.
"""

from __future__ import annotations

import collections
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from supervisor.model import logs as records

CHUNK = 1 << 20  # most output returned at once
_BLOCK = 1 << 16
_STAMP = rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z"
_MARK = re.compile(rb"(?m)^" + _STAMP + rb" stdout P $")  # the record that begins a run
# A record taken as it is, its content kept: a line's with its newline, a run's mark empty.
_PLAIN = re.compile(rb"(?m)^" + _STAMP + rb" std(?:out|err) (?:F\S* (.*\n)|P\S* ()\n)")
# A part of a line: the shim writes one where a read of its pipe ended inside a line
_PART = re.compile(rb"(?m)^" + _STAMP + rb" std(?:out|err) P\S* .")

Position = tuple[int, int]  # (index of the file, oldest first; offset in it)


@dataclass(frozen=True)
class Query:
    """Which output: lines begun within [since, until] (stamps of model.logs), of the previous
    run only, the last ``tail`` of them; each with its time in front (``timestamps``)."""

    since: bytes | None = None
    until: bytes | None = None
    tail: int | None = None
    timestamps: bool = False
    previous: bool = False

    @property
    def plain(self) -> bool:
        """Every record as it is: no time shown, none left out."""
        return not self.timestamps and self.since is None and self.until is None


def paths(path: Path) -> Iterator[Path]:
    """NAME.log, then NAME.log.1, NAME.log.2, ... as far as they go: newest first."""
    yield path
    index = 1
    while (older := path.with_name(f"{path.name}.{index}")).exists():
        yield older
        index += 1


class _Lines:
    """Records to the output they stand for, keeping for each stream the line it has begun:
    whether it is selected (its first record's time in the window), and its parts so far. A
    line written in parts is shown whole once it ends, though lines of the other stream came
    between its parts (``echo`` to stdout, then to stderr, read in two)."""

    def __init__(self, query: Query) -> None:
        self.query = query
        self.begun: dict[bytes, bool] = {}  # stream -> the line begun is selected
        self.parts: dict[bytes, list[bytes]] = {}  # stream -> the parts of the selected one

    def render(self, record: records.Record) -> tuple[bytes, bool] | None:
        """What ``record`` adds to the output and whether it ends a line; None if its line is
        not selected or not ended. The mark of a run's beginning ends the lines begun: what
        they had is shown as it was."""
        if record.begins_run:
            self.begun.clear()
            rest = b"".join(text for _, text in self.rest())
            return (rest, True) if rest else None
        first = record.stream not in self.begun
        if first:
            self.begun[record.stream] = self._selected(record.stamp)
        keep = self.begun[record.stream]
        if not record.partial:
            del self.begun[record.stream]
        if not keep:
            return None
        text = record.text
        if first and self.query.timestamps and record.stamp is not None:
            text = record.stamp + b" " + text
        if record.partial:
            self.parts.setdefault(record.stream, []).append(text)
            return None
        if parts := self.parts.pop(record.stream, None):
            text = b"".join(parts) + text
        return text, True

    def rest(self) -> list[tuple[bytes, bytes]]:
        """The lines begun, as far as they go (stream, text), no longer held."""
        rest = [(stream, b"".join(parts)) for stream, parts in self.parts.items()]
        self.parts.clear()
        return rest

    def _selected(self, stamp: bytes | None) -> bool:
        since, until = self.query.since, self.query.until
        return stamp is None or ((since is None or stamp >= since)
                                 and (until is None or stamp <= until))


class _Last:
    """The last ``count`` lines of what is read, and whether each may have begun before the
    reading did (the first line of a stream, until a run begins)."""

    def __init__(self, count: int) -> None:
        self.lines: collections.deque[tuple[bytes, bool]] = collections.deque(maxlen=count)
        self.count = count
        self._begun: dict[bytes, list[bytes]] = {}  # stream -> the parts of its line begun
        self._streams: set[bytes] = set()  # those a line was seen begin in

    def add(self, record: records.Record, rendered: tuple[bytes, bool] | None) -> None:
        if record.begins_run:  # the lines begun end here
            self.end()
            self._streams.update(stream.encode() for stream in records.STREAMS)
        if rendered is None:
            return
        text, ends = rendered
        self._begun.setdefault(record.stream, []).append(text)
        if ends:
            self._end_line(record.stream)

    def add_part(self, stream: bytes, text: bytes) -> None:
        """A part of a line of ``stream`` that has not ended (yet)."""
        self._begun.setdefault(stream, []).append(text)

    def end(self) -> None:
        for stream in list(self._begun):
            self._end_line(stream)

    def _end_line(self, stream: bytes) -> None:
        self.lines.append((b"".join(self._begun.pop(stream)), stream not in self._streams))
        self._streams.add(stream)

    @property
    def whole(self) -> bool:
        """Whether these are ``count`` lines, none of which may have begun before."""
        return len(self.lines) == self.count and not any(cut for _, cut in self.lines)

    def texts(self) -> Iterator[bytes]:
        return (text for text, _ in self.lines)


@dataclass
class _Current:
    """The file the shim writes now, as a follower reads on in it."""

    fd: int
    offset: int
    rest: bytes = b""  # a record whose newline is not there yet


class LogReader:
    """The output ``query`` selects from the files of ``path`` (``read`` until it returns
    nothing), then what is written after (``more``, as often as the caller likes)."""

    def __init__(self, path: Path, query: Query) -> None:
        self.path = path
        self.query = query
        self._fds: list[int] = []  # oldest first
        seen = set()
        for each in paths(path):
            try:
                fd = os.open(each, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) in seen:
                os.close(fd)
            else:
                seen.add((st.st_dev, st.st_ino))
                self._fds.insert(0, fd)
        self._lines = _Lines(query)
        self._output = self._select()
        self._current: _Current | None = None

    def close(self) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds.clear()

    def __enter__(self) -> LogReader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- what is there --------------------------------------------------------------------------

    def read(self) -> bytes:
        """The next part of the selected output (up to CHUNK and a line); b"" once it is all."""
        parts, size = [], 0
        for text in self._output:
            parts.append(text)
            size += len(text)
            if size >= CHUNK:
                break
        return b"".join(parts)

    def _select(self) -> Iterator[bytes]:
        start, end = (0, 0), None
        if self.query.previous:
            marks = self._marks()
            if not marks:
                return  # every line kept is of the current run
            start, end = (marks[-2] if len(marks) > 1 else (0, 0)), marks[-1]
        tail = self.query.tail
        if tail is None and self.query.plain:  # ctrctl logs: the fast way, at C speed,
            for block in self._blocks(start, end):  # where no line is in parts
                if self._lines.parts or _PART.search(block):
                    yield from self._rendered(block)
                else:
                    yield _PLAIN.sub(rb"\1\2", block)
        elif tail is None:
            for record in self._records(start, end):
                rendered = self._lines.render(record)
                if rendered is not None:
                    yield rendered[0]
        if tail is None:  # a line still being written, or that the run ended without newline
            yield b"".join(text for _, text in self._lines.rest())
            return
        if tail == 0:
            self._records_to_end(start, end)
            return
        yield from self._tail(tail, start, end)

    def _tail(self, count: int, start: Position, end: Position | None) -> Iterator[bytes]:
        """The last ``count`` lines: read from where enough records follow (a line may take
        several), further back while fewer were found or one of them may have begun before
        (the first line of each stream read), unless all was read."""
        by_time = self.query.since is not None or self.query.until is not None
        wanted = count + 1
        while True:
            begin = start if by_time or end else max(start, self._back(wanted))
            self._lines = _Lines(self.query)
            last = _Last(count)
            for record in self._records(begin, end):
                last.add(record, self._lines.render(record))
            for stream, text in self._lines.rest():
                last.add_part(stream, text)
            last.end()
            if begin == start or last.whole:
                yield from last.texts()
                return
            wanted *= 2

    def _records_to_end(self, start: Position, end: Position | None) -> None:
        """Read through (``-n 0``), so that following begins after what is there."""
        for record in self._records(start, end):
            self._lines.render(record)

    # -- the files ------------------------------------------------------------------------------

    def _blocks(self, start: Position, end: Position | None = None) -> Iterator[bytes]:
        """The whole lines from ``start`` up to ``end`` (or all), a block at a time; where the
        last of NAME.log ends is remembered for ``more``."""
        first, offset = start
        for index in range(first, len(self._fds) if end is None else end[0] + 1):
            fd = self._fds[index]
            position = offset if index == first else 0
            limit = end[1] if end is not None and index == end[0] else None
            for block in _whole_lines(fd, position, limit):
                position += len(block)
                yield block
            if end is None and index == len(self._fds) - 1:
                self._current = _Current(fd, position)

    def _records(self, start: Position, end: Position | None = None) -> Iterator[records.Record]:
        for block in self._blocks(start, end):
            yield from _parsed(block)

    def _rendered(self, block: bytes) -> Iterator[bytes]:
        for record in _parsed(block):
            if (rendered := self._lines.render(record)) is not None:
                yield rendered[0]

    def _back(self, count: int) -> Position:
        """Where at least ``count`` whole records follow, or the beginning."""
        for index in range(len(self._fds) - 1, -1, -1):
            fd = self._fds[index]
            pos = os.fstat(fd).st_size
            while pos > 0:
                start = max(0, pos - _BLOCK)
                block = os.pread(fd, pos - start, start)
                cut = len(block)
                while (cut := block.rfind(b"\n", 0, cut)) >= 0:
                    if count == 0:  # the newline before the first of them
                        return index, start + cut + 1
                    count -= 1
                pos = start
        return 0, 0

    def _marks(self) -> list[Position]:
        """Where each run kept begins."""
        marks = []
        for index, fd in enumerate(self._fds):
            offset, rest = 0, b""
            while block := os.pread(fd, _BLOCK, offset):
                data = rest + block
                base = offset - len(rest)
                cut = data.rfind(b"\n") + 1
                marks += [(index, base + m.start()) for m in _MARK.finditer(data, 0, cut)]
                rest, offset = data[cut:], offset + len(block)
        return marks

    # -- following ------------------------------------------------------------------------------

    def more(self) -> bytes:
        """What the shim wrote since (up to CHUNK and a record); on into the next newer file
        once the one read is rotated away and read to its end."""
        if self.query.previous:
            return b""  # that run has ended
        current = self._current
        if current is None:
            self._current = current = self._reopen(None)
            if current is None:
                return b""
        parts: list[bytes] = []
        size = 0
        while size < CHUNK:
            block = os.pread(current.fd, _BLOCK, current.offset)
            if not block:
                following = self._rotated(current) and self._reopen(current)
                if not following:
                    break  # nothing newer (yet): look again later
                self._current = current = following
                continue
            current.offset += len(block)
            *lines, current.rest = (current.rest + block).split(b"\n")
            for line in lines:
                rendered = self._lines.render(records.parse_record(line))
                if rendered is not None:
                    parts.append(rendered[0])
                    size += len(rendered[0])
        return b"".join(parts)

    def _rotated(self, current: _Current) -> bool:
        """Whether NAME.log is now another file than the one read (rotated, or begun anew)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return False  # between the rename and the new file's creation: look again later
        held = os.fstat(current.fd)
        return (st.st_dev, st.st_ino) != (held.st_dev, held.st_ino) or st.st_size < \
            current.offset

    def _reopen(self, done: _Current | None) -> _Current | None:
        """The file written after ``done`` (read to its end), from its beginning: the one that
        is now a rotation newer than it, or the oldest kept if it was rotated out already (what
        came between is gone); NAME.log if there was none."""
        held = None if done is None else os.fstat(done.fd)
        newer: Path | None = None
        for each in paths(self.path):  # newest first
            try:
                st = os.stat(each)
            except FileNotFoundError:
                continue  # NAME.log between its rename and its creation
            if held is not None and (st.st_dev, st.st_ino) == (held.st_dev, held.st_ino):
                break
            newer = each
        try:
            fd = os.open(newer or self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        for old in self._fds:
            os.close(old)
        self._fds = [fd]
        return _Current(fd, 0)


def _whole_lines(fd: int, offset: int, limit: int | None) -> Iterator[bytes]:
    """Blocks of whole lines from ``offset`` to the end of the file (or ``limit``), one after
    the other; a last line without its newline is left for later."""
    rest = b""
    while block := os.pread(fd, _BLOCK if limit is None else min(_BLOCK, limit - offset),
                            offset):
        offset += len(block)
        data = rest + block
        cut = data.rfind(b"\n") + 1
        rest = data[cut:]
        if cut:
            yield data[:cut]


def read_text(path: Path) -> bytes:
    """All the output the files of ``path`` hold, as ``ctrctl logs`` prints it."""
    with LogReader(path, Query()) as reader:
        return b"".join(iter(reader.read, b""))


def _parsed(block: bytes) -> Iterator[records.Record]:
    """The records of whole lines."""
    for line in block.split(b"\n")[:-1]:
        yield records.parse_record(line)
