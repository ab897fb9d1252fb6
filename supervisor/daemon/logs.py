"""Containers' stdout and stderr: in log files the shim writes, and in the journal through ctrd.

**Who writes the file.** A log that is rotated needs a writer that knows: PID 1 appending to
DATA_DIR/logs/NAME.log itself (as ctr did) goes on writing into the file it opened, so a file
renamed away grows on unbounded, and logrotate's copytruncate loses what is written between its
copy and its truncate. ctrd relaying the pipes would make the log depend on ctrd: without
systemd nothing holds the pipes while it restarts, and a container that fills one blocks until
a ctrd is back. So the writer is the container's shim (shim/ctr-shim.c): already one small C
process per container, PID 1's parent outside the container, and the one process that outlives
every ctrd for exactly as long as the container runs. It holds the read ends of PID 1's pipes
(supervisor.runtime.logwriter), stamps each piece of output with the time it read it, writes
CRI log records (supervisor.model.logs) and rotates between two records at ``[logs] max_size``,
keeping ``max_files`` files (NAME.log, NAME.log.1 the next older, ...). Nothing is lost or split
by a rotation, a ctrd restart or a ctrd crash, with or without systemd; what is lost is what the
definition asks for: the oldest file, once ``max_files`` are full. A default cap (10M x 3)
applies when a definition sets none; docker has none, and its users' disks fill (moby #40207).
The files of a container are kept across its runs (as docker's), a mark at the start of each
run telling ``ctrctl logs --previous`` where the last one began (supervisor.daemon.logfiles).

**What it costs** (``make bench --parts logs``, a loaded 2-CPU VM): the log writer adds about
36 KiB of private memory to a shim (104 to 140 KiB), 48 KiB after a million lines; ctrd holds
nothing per container for it without systemd, 1.6 KiB with the journal relay. A million lines
of ``seq`` take 0.28 s through the shim (rotated at 10M x 3) as into a plain file (the shim
writes on the other CPU at about 150 ns a line); the journal, through ctrd, takes 13-15 us of
ctrd's CPU a line. ctrd killed with SIGKILL three times during a flood of a million numbered
lines: none missing from the files, none twice.

**The journal.** Where systemd runs ctrd the shim also writes every record into a socket of
ctrd's (one end of a stream socket pair), which ctrd reads on its event loop and sends each line
to journald as a native entry (``supervisor.systemd.journal``), so that ``journalctl -u
ctr@NAME`` and ``journalctl CONTAINER_NAME=NAME`` show it: journald would attribute lines the
container wrote into a stream of its own to the container's scope, not to ``ctr@NAME.service``.
Both ends are kept in systemd's fd store, ctrd's as ``NAME.journal``, the shim's as
``NAME.shim``. While ctrd restarts (or after a crash, until ``Restart=`` brings it back) systemd
holds them and the records wait in the socket (about 200 KiB), after which the shim blocks until
a ctrd reads again, and with it, once its own pipes are full, the container; the journal misses
nothing. The next ctrd receives them (``LISTEN_FDNAMES``) and relays on. ctrd takes a record out
of the socket only once its line is sent (it reads with MSG_PEEK first), so a ctrd killed at any
moment loses no line: at worst the one it was sending is sent again by the next. What a kill can
lose is a part of a line ctrd had taken before the rest came: the shim sends a line it read in
two as one record, so a part comes alone only for a line longer than 4 KiB or after 50 ms
without its end (a prompt). The shim's end is stored because systemd drops a stored descriptor
that reports POLLHUP, as ctrd's end does once the shim is gone: a container that printed its
last words and ended while no ctrd ran would take them along. If the store is emptied (ctrd
stopped, not restarted, on systemd before 254), the shim's writes fail (EPIPE) and it writes the
file alone: the journal misses that container's output until it is restarted. The store forgets
a container's ends when ctrd has relayed the rest after it is gone (``FDSTOREREMOVE``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from supervisor.daemon import logfiles
from supervisor.model import logs as records
from supervisor.model.spec import LogsSpec
from supervisor.runtime.logwriter import LogTarget
from supervisor.systemd import notify, units
from supervisor.systemd.journal import MAX_MESSAGE, SOCKET, JournalWriter, container_fields

log = logging.getLogger(__name__)

OURS, SHIMS = "journal", "shim"  # the fd store's names of the ends: NAME.journal, NAME.shim
_CHUNK = 64 * 1024
_PAUSE = 0.01  # seconds before looking again at a record the shim has not written whole yet
_TAKEN = bytearray(_CHUNK)  # where records relayed are taken out of a socket to


def log_path(data_dir: Path, name: str) -> Path:
    """The file a container's output is written to (its rotated files beside it)."""
    return data_dir / "logs" / f"{name}.log"


def log_target(data_dir: Path, name: str, spec: LogsSpec, journal: int | None) -> LogTarget:
    """What the shim of a new run of container ``name`` is told to write (``journal``: the
    relay's pipe, if any)."""
    path = log_path(data_dir, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    return LogTarget(str(path.parent), path.name, spec.max_size, spec.max_files, journal)


def remove_files(path: Path) -> None:
    """A log file and its rotated files, the ones ``ctrctl logs`` reads: an instance's go with
    it, as ``docker rm`` removes a container's log. A look-up each, not a scan of the directory,
    which holds every container's logs: at 2000 containers a scan took 1.5 ms of the event loop
    at each removal."""
    for each in list(logfiles.paths(path)):
        each.unlink(missing_ok=True)


def append_line(path: Path, line: bytes) -> None:
    """A line of ctrd's own at the end of a log file, as a record of stderr among the shim's
    (a write with O_APPEND lands whole between two of them)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
    try:
        os.write(fd, b"".join(records.record("stderr", part)
                              for part in line.replace(b"\r", b"").split(b"\n")))
    finally:
        os.close(fd)


def relay_available() -> bool:
    """Whether systemd runs us (its fd store keeps the pipes across a ctrd restart) and journald
    listens."""
    return bool(os.environ.get("NOTIFY_SOCKET")) and units.booted() \
        and Path(SOCKET).exists()


@dataclass
class _Pipe:
    """ctrd's end of one container's socket: records in, whole lines to the journal."""

    sock: socket.socket
    name: str
    fields: dict[bytes, dict[str, str]]  # by stream
    begun: dict[bytes, bytes] = field(default_factory=dict)  # by stream: a line not yet ended
    eof: bool = False
    waiting: asyncio.TimerHandle | None = None  # for the rest of a record


class LogRelay:
    """The journal pipes of every container ctrd runs; see the module docstring."""

    def __init__(self, data_dir: Path, stored: Iterable[tuple[str, int]] = (),
                 journal: JournalWriter | None = None) -> None:
        self.data_dir = data_dir
        self._journal = journal if journal is not None else JournalWriter()
        self._journal_ok = True  # False: a failure was reported, none since
        self._pipes: dict[str, _Pipe] = {}
        self._stored: dict[str, int] = {}  # name -> our end, from the last ctrd, not yet claimed
        for label, fd in stored:
            name, _, end = label.rpartition(".")
            if end == SHIMS:  # the store keeps its own: ours is not needed
                os.close(fd)
            elif end != OURS or name in self._stored:
                log.warning("fd store: ignoring a descriptor named %r", label)
                os.close(fd)
            else:
                self._stored[name] = fd

    # -- the life of a container's output -------------------------------------------------------

    def open(self, name: str, unit: str | None) -> int:
        """A new socket pair for a run of container ``name``; the shim's end, which the caller
        closes once the shim has it. ``unit``: the systemd unit the lines are logged for
        (``ctr@NAME.service``), if any."""
        self.release(name)  # what the last run left unread
        ours, shims = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        notify.store_fds(f"{name}.{OURS}", [ours.fileno()])
        notify.store_fds(f"{name}.{SHIMS}", [shims.fileno()])
        self._follow(name, unit, ours)
        return shims.detach()

    def adopt(self, name: str, unit: str | None, pid: int | None) -> None:
        """Relay on the socket of a container the last ctrd started (from the fd store);
        ``pid``: its PID 1, if it runs, to say when its socket was lost."""
        fd = self._stored.pop(name, None)
        if fd is not None:
            self._follow(name, unit, socket.socket(fileno=fd))
        elif pid is not None:
            log.warning("%s: systemd kept no pipe of its output (ctrd was stopped, not "
                        "restarted): the journal misses what it writes until it restarts; its "
                        "log file has all of it", name)

    def release(self, name: str) -> None:
        """The container is gone: relay what its socket still holds, close it, and have the fd
        store forget both ends."""
        pipe = self._pipes.pop(name, None)
        if pipe is None:
            return
        self._stop(pipe)
        while self._read(pipe):
            pass
        self._flush(pipe, self._take(pipe))  # a record the shim could not end: as it is
        pipe.sock.close()
        for end in (OURS, SHIMS):
            notify.remove_stored_fd(f"{name}.{end}")

    def note(self, name: str, unit: str | None, line: bytes) -> None:
        """A line of ctrd's own about container ``name`` (a failing health check's output): in
        its log file, and in the journal as a warning (``CTR_STREAM=health``)."""
        append_line(log_path(self.data_dir, name), line)
        self._send(line, container_fields(name, "health", unit))

    def release_unclaimed(self) -> None:
        """Sockets of containers no record names any more (ctrd ended between a container's end
        and the store forgetting its socket): relay what they hold, then release them."""
        for name in sorted(self._stored):
            self.adopt(name, None, None)
            self.release(name)

    def close(self) -> None:
        """ctrd is ending: send the lines begun, stop reading. The store keeps the pipes while
        ctrd restarts; systemd before 254 empties it when ctrd is stopped (254 keeps it with
        ``FileDescriptorStorePreserve=yes``), and then the shims write the log files alone."""
        for pipe in self._pipes.values():
            self._stop(pipe)
            self._flush(pipe)
            pipe.sock.close()
        self._pipes.clear()
        for fd in self._stored.values():
            os.close(fd)
        self._stored.clear()
        self._journal.close()

    # -- reading --------------------------------------------------------------------------------

    def _follow(self, name: str, unit: str | None, sock: socket.socket) -> None:
        sock.setblocking(False)
        pipe = _Pipe(sock, name, {stream.encode(): container_fields(name, stream, unit)
                                  for stream in records.STREAMS})
        self._pipes[name] = pipe
        asyncio.get_running_loop().add_reader(sock.fileno(), self._readable, pipe)

    def _stop(self, pipe: _Pipe) -> None:
        if pipe.waiting is not None:
            pipe.waiting.cancel()
        elif not pipe.eof:
            asyncio.get_running_loop().remove_reader(pipe.sock.fileno())
        pipe.waiting = None
        pipe.eof = True

    def _readable(self, pipe: _Pipe) -> None:
        if self._read(pipe) or pipe.eof:
            if pipe.eof:  # the shim's end is closed and none is stored
                asyncio.get_running_loop().remove_reader(pipe.sock.fileno())
                self._flush(pipe, self._take(pipe))
            return
        # Only a part of a record is there, the shim writing the rest: not at once again.
        loop = asyncio.get_running_loop()
        loop.remove_reader(pipe.sock.fileno())
        pipe.waiting = loop.call_later(_PAUSE, self._resume, pipe)

    def _resume(self, pipe: _Pipe) -> None:
        pipe.waiting = None
        asyncio.get_running_loop().add_reader(pipe.sock.fileno(), self._readable, pipe)

    def _read(self, pipe: _Pipe) -> bool:
        """The whole records there, each taken out of the socket once its line is sent (or its
        part kept); False if there was none (the socket empty for now, or for good: ``eof``)."""
        try:
            data = pipe.sock.recv(_CHUNK, socket.MSG_PEEK)
        except BlockingIOError:
            return False
        if not data:
            pipe.eof = True
            return False
        whole = data.rfind(b"\n") + 1
        for line in data[:whole].split(b"\n")[:-1]:
            self._record(pipe, records.parse_record(line))
            pipe.sock.recv_into(_TAKEN, len(line) + 1, socket.MSG_WAITALL)  # relayed: out
        return whole > 0

    def _take(self, pipe: _Pipe) -> bytes:
        """What is left in the socket: no more than a part of a record."""
        with contextlib.suppress(OSError):
            return pipe.sock.recv(_CHUNK)
        return b""

    def _record(self, pipe: _Pipe, record: records.Record) -> None:
        """A record: the line it ends to the journal, or its part kept (sent in pieces of the
        most an entry takes)."""
        text = pipe.begun.pop(record.stream, b"") + record.content
        if not record.partial:
            self._send(text, pipe.fields[record.stream])
            return
        while len(text) >= MAX_MESSAGE:
            self._send(text[:MAX_MESSAGE], pipe.fields[record.stream])
            text = text[MAX_MESSAGE:]
        if text:
            pipe.begun[record.stream] = text

    def _flush(self, pipe: _Pipe, rest: bytes = b"") -> None:
        """The lines begun (and ``rest``), as entries of their own."""
        if rest:
            self._record(pipe, records.parse_record(rest))
        for stream, text in pipe.begun.items():
            self._send(text, pipe.fields[stream])
        pipe.begun.clear()

    def _send(self, line: bytes, fields: dict[str, str]) -> None:
        try:
            self._journal.send(line, fields)
        except OSError as exc:
            if self._journal_ok:  # once until journald takes entries again
                log.warning("journald does not take container output (%s); the log files "
                            "still have it", exc)
            self._journal_ok = False
        else:
            self._journal_ok = True


def open_relay(data_dir: Path, stored: Iterable[tuple[str, int]]) -> LogRelay | None:
    """A relay where systemd runs us; else None (and anything passed to us is closed)."""
    if relay_available():
        return LogRelay(data_dir, stored)
    for _, fd in stored:
        with contextlib.suppress(OSError):
            os.close(fd)
    return None
