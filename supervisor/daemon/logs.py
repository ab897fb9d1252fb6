"""Containers' stdout and stderr, relayed by ctrd into the journal and the log file.

Where systemd runs ctrd, each container's PID 1 writes into two pipes (stdout, stderr) instead
of its log file. ctrd reads them on its event loop, appends every byte to DATA_DIR/logs/NAME.log
(what ``ctrctl logs`` reads) and sends every line to journald as a native entry
(``supervisor.systemd.journal``), so that ``journalctl -u ctr@NAME`` and ``journalctl
CONTAINER_NAME=NAME`` show it: journald would attribute lines the container wrote into a stream
of its own to the container's scope, not to ``ctr@NAME.service``.

Both ends of each pipe are kept in systemd's fd store, as ``NAME.stdout`` and ``NAME.stderr``.
While ctrd restarts (or after a crash, until ``Restart=`` brings it back) systemd holds them and
what the container writes waits in the pipe: 64 KiB a pipe, after which the writer blocks until
a ctrd reads again; nothing is dropped. The next ctrd receives them (``LISTEN_FDNAMES``) and
relays on. The write end is stored too because systemd drops a stored descriptor that reports
POLLHUP, as a read end does once its last writer is gone: a container that printed its last
words and ended while no ctrd ran would take them along. The one thing only a crash loses is
the unterminated tail of a line the dead ctrd had read (the log file has it; a clean stop sends
it as an entry of its own). The store forgets a pipe when ctrd has relayed the rest after its
container is gone (``FDSTOREREMOVE``).

Without systemd there is no store to outlive ctrd, so PID 1 writes into the log file itself and
no line depends on ctrd staying up (``relay_available``).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from supervisor.systemd import notify, units
from supervisor.systemd.journal import MAX_MESSAGE, SOCKET, JournalWriter, container_fields

log = logging.getLogger(__name__)

STREAMS = ("stdout", "stderr")  # PID 1's fds 1 and 2
_CHUNK = 64 * 1024


def log_path(data_dir: Path, name: str) -> Path:
    """The file a container's output is appended to, relayed or not."""
    return data_dir / "logs" / f"{name}.log"


def append_line(path: Path, line: bytes) -> None:
    """One line at the end of a log file, as PID 1's own output is appended there."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
    try:
        os.write(fd, line + b"\n")
    finally:
        os.close(fd)


def relay_available() -> bool:
    """Whether systemd runs us (its fd store keeps the pipes across a ctrd restart) and journald
    listens."""
    return bool(os.environ.get("NOTIFY_SOCKET")) and units.booted() \
        and Path(SOCKET).exists()


@dataclass
class _Stream:
    """One pipe's read end: bytes go to the log file as read, whole lines to the journal."""

    fd: int
    label: str  # its name in the fd store
    fields: dict[str, str]
    pending: bytes = b""  # the start of a line not yet ended
    eof: bool = False


@dataclass
class _Output:
    """One container's streams and its log file."""

    file: int
    streams: list[_Stream] = field(default_factory=list)


class LogRelay:
    """The pipes of every container ctrd runs; see the module docstring."""

    def __init__(self, data_dir: Path, stored: Iterable[tuple[str, int]] = (),
                 journal: JournalWriter | None = None) -> None:
        self.data_dir = data_dir
        self._journal = journal if journal is not None else JournalWriter()
        self._journal_ok = self._file_ok = True  # False: a failure was reported, none since
        self._outputs: dict[str, _Output] = {}
        self._stored: dict[str, int] = {}  # read ends from the last ctrd, not yet claimed
        for label, fd in stored:
            if _is_write_end(fd):  # the store keeps its own: ours is not needed
                os.close(fd)
            elif label in self._stored or label.rpartition(".")[2] not in STREAMS:
                log.warning("fd store: ignoring a descriptor named %r", label)
                os.close(fd)
            else:
                self._stored[label] = fd

    # -- the life of a container's output -------------------------------------------------------

    def open(self, name: str, unit: str | None) -> tuple[int, int]:
        """New pipes for a run of container ``name``; their write ends for PID 1's stdout and
        stderr, which the caller closes once PID 1 has them. ``unit``: the systemd unit the
        lines are logged for (``ctr@NAME.service``), if any."""
        self.release(name)  # what the last run left unread
        reads, writes = [], []
        try:
            for _ in STREAMS:
                read, write = os.pipe2(os.O_CLOEXEC)
                reads.append(read)
                writes.append(write)
        except OSError:
            for fd in reads + writes:
                os.close(fd)
            raise
        for kind, read, write in zip(STREAMS, reads, writes, strict=True):
            notify.store_fds(f"{name}.{kind}", [read, write])
        self._follow(name, unit, dict(zip(STREAMS, reads, strict=True)))
        return writes[0], writes[1]

    def adopt(self, name: str, unit: str | None, pid: int | None) -> None:
        """Relay on the pipes of a container the last ctrd started (from the fd store); ``pid``:
        its PID 1, if it runs, to tell when its pipes were lost (see ``close``)."""
        fds = {kind: self._stored.pop(f"{name}.{kind}") for kind in STREAMS
               if f"{name}.{kind}" in self._stored}
        if fds:
            self._follow(name, unit, fds)
        elif pid is not None and _writes_into_a_pipe(pid):
            log.warning("%s: systemd kept no pipes of its output (ctrd was stopped, not "
                        "restarted): what it writes is lost until it restarts", name)

    def release(self, name: str) -> None:
        """The container is gone: relay what its pipes still hold, close them, and have the fd
        store forget them."""
        output = self._outputs.pop(name, None)
        if output is None:
            return
        for stream in output.streams:
            if not stream.eof:
                asyncio.get_running_loop().remove_reader(stream.fd)
                while self._read(output, stream):
                    pass
            self._flush(stream)
            os.close(stream.fd)
            notify.remove_stored_fd(stream.label)
        os.close(output.file)

    def note(self, name: str, unit: str | None, line: bytes) -> None:
        """A line of ctrd's own about container ``name`` (a failing health check's output): in
        its log file, and in the journal as a warning (``CTR_STREAM=health``)."""
        output = self._outputs.get(name)
        if output is None:
            append_line(log_path(self.data_dir, name), line)
        else:
            self._append(output, line + b"\n")
        self._send(line, container_fields(name, "health", unit))

    def release_unclaimed(self) -> None:
        """Pipes of containers no record names any more (ctrd ended between a container's end
        and the store forgetting its pipes): relay what they hold, then release them."""
        names = {label.rpartition(".")[0] for label in self._stored}
        for name in sorted(names):
            self.adopt(name, None, None)
            self.release(name)

    def close(self) -> None:
        """ctrd is ending: send the lines begun, stop reading. The store keeps the pipes while
        ctrd restarts; systemd before 254 empties it when ctrd is stopped (254 keeps it with
        ``FileDescriptorStorePreserve=yes``), and then what the containers write until they are
        restarted has no reader."""
        loop = asyncio.get_running_loop()
        for output in self._outputs.values():
            for stream in output.streams:
                if not stream.eof:
                    loop.remove_reader(stream.fd)
                self._flush(stream)
                os.close(stream.fd)
            os.close(output.file)
        self._outputs.clear()
        for fd in self._stored.values():
            os.close(fd)
        self._stored.clear()
        self._journal.close()

    # -- reading --------------------------------------------------------------------------------

    def _follow(self, name: str, unit: str | None, fds: dict[str, int]) -> None:
        path = log_path(self.data_dir, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        output = _Output(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                                 0o640))
        self._outputs[name] = output
        loop = asyncio.get_running_loop()
        for kind, fd in fds.items():
            os.set_blocking(fd, False)
            stream = _Stream(fd, f"{name}.{kind}", container_fields(name, kind, unit))
            output.streams.append(stream)
            loop.add_reader(fd, self._readable, output, stream)

    def _readable(self, output: _Output, stream: _Stream) -> None:
        self._read(output, stream)
        if stream.eof:  # every writer is gone (none stored); the fd stays open until release
            asyncio.get_running_loop().remove_reader(stream.fd)
            self._flush(stream)

    def _read(self, output: _Output, stream: _Stream) -> bool:
        """One read: to the file, and its whole lines to the journal; False once the pipe is
        empty for now or for good (``eof``)."""
        try:
            data = os.read(stream.fd, _CHUNK)
        except BlockingIOError:
            return False
        if not data:
            stream.eof = True
            return False
        self._append(output, data)
        *lines, stream.pending = (stream.pending + data).split(b"\n")
        for line in lines:
            self._send(line, stream.fields)
        while len(stream.pending) >= MAX_MESSAGE:  # a line longer than an entry takes
            self._send(stream.pending[:MAX_MESSAGE], stream.fields)
            stream.pending = stream.pending[MAX_MESSAGE:]
        return True

    def _flush(self, stream: _Stream) -> None:
        if stream.pending:
            self._send(stream.pending, stream.fields)
            stream.pending = b""

    def _append(self, output: _Output, data: bytes) -> None:
        try:
            while data:
                data = data[os.write(output.file, data):]
        except OSError as exc:
            if self._file_ok:
                log.warning("cannot append to a container's log file (%s); the journal "
                            "still has it", exc)
            self._file_ok = False
        else:
            self._file_ok = True

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


def _is_write_end(fd: int) -> bool:
    return fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_WRONLY


def _writes_into_a_pipe(pid: int) -> bool:
    try:
        return os.readlink(f"/proc/{pid}/fd/1").startswith("pipe:")
    except OSError:  # gone, or no stdout
        return False


def open_relay(data_dir: Path, stored: Iterable[tuple[str, int]]) -> LogRelay | None:
    """A relay where systemd runs us; else None (and anything passed to us is closed)."""
    if relay_available():
        return LogRelay(data_dir, stored)
    for _, fd in stored:
        with contextlib.suppress(OSError):
            os.close(fd)
    return None
