"""The output relay and the fd store protocol against stand-ins for journald and systemd's notify
socket (datagram sockets of the test's own); tests/test_systemd_e2e.py runs it under systemd."""

from __future__ import annotations

import array
import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from supervisor.daemon.logs import LogRelay, append_line, log_path
from supervisor.model.logs import Stream, parse_record, record, run_mark
from supervisor.systemd.journal import MAX_MESSAGE, JournalWriter
from tests.conftest import REPO


class Listener:
    """A bound datagram socket: what was sent to it, with any descriptors passed along."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.setblocking(False)

    def received(self) -> list[tuple[bytes, list[int]]]:
        got: list[tuple[bytes, list[int]]] = []
        while True:
            try:
                data, ancillary, _, _ = self.sock.recvmsg(1 << 16, socket.CMSG_SPACE(64))
            except BlockingIOError:
                return got
            fds = array.array("i")
            for level, kind, payload in ancillary:
                if (level, kind) == (socket.SOL_SOCKET, socket.SCM_RIGHTS):
                    fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
            got.append((data, list(fds)))

    def entries(self) -> list[dict[str, str]]:
        """Journal entries (single-line values only, as the relay sends them)."""
        return [dict(line.split("=", 1) for line in data.decode().splitlines())
                for data, _ in self.received()]


@pytest.fixture
def sockets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Listener,
                                                                                Listener]]:
    """(systemd's notify socket, journald's socket) stand-ins."""
    notify, journal = Listener(tmp_path / "notify"), Listener(tmp_path / "journal")
    monkeypatch.setenv("NOTIFY_SOCKET", str(notify.path))
    try:
        yield notify, journal
    finally:
        notify.sock.close()
        journal.sock.close()


def records(*parts: tuple[Stream, bytes, bool]) -> bytes:
    """What a shim writes into the relay's socket: (stream, content, partial) each."""
    return b"".join(record(stream, content, partial=partial)
                    for stream, content, partial in parts)


def test_records_reach_the_journal_as_lines_and_the_socket_survives_a_new_relay(
        tmp_path: Path, sockets: tuple[Listener, Listener]) -> None:
    notify, journald = sockets

    async def scenario() -> None:
        relay = LogRelay(tmp_path, journal=JournalWriter(str(journald.path)))
        shim = relay.open("web", "ctr@web.service")
        os.write(shim, run_mark() + records(("stdout", b"one", False), ("stdout", b"tw", True),
                                            ("stderr", b"oops", False), ("stdout", b"o", False),
                                            ("stdout", b"half a ", True)))
        await asyncio.sleep(0.1)
        entries = journald.entries()
        assert [(e["MESSAGE"], e["PRIORITY"]) for e in entries] == [
            ("one", "6"), ("oops", "3"), ("two", "6")]  # a line's parts joined, in its stream
        assert {(e["CONTAINER_NAME"], e["SYSLOG_IDENTIFIER"], e["OBJECT_SYSTEMD_UNIT"])
                for e in entries} == {("web", "web", "ctr@web.service")}
        stored = notify.received()  # what systemd would keep: both ends of the socket, named
        assert [(data, len(fds)) for data, fds in stored] == [
            (b"FDSTORE=1\nFDNAME=web.journal", 1), (b"FDSTORE=1\nFDNAME=web.shim", 1)]
        cut = records(("stderr", b"cut in two by the shim's blocked write", False))
        os.write(shim, cut[:20])
        await asyncio.sleep(0.1)
        relay.close()  # ctrd stops: the line begun is sent, the socket stays with "systemd"
        assert [e["MESSAGE"] for e in journald.entries()] == ["half a "]

        os.write(shim, cut[20:] + records(("stdout", b"while down", False)))  # waits
        passed = [(data.decode().rpartition("=")[2], fd) for data, fds in stored for fd in fds]
        successor = LogRelay(tmp_path, passed, journal=JournalWriter(str(journald.path)))
        successor.adopt("web", "ctr@web.service", None)
        await asyncio.sleep(0.1)
        assert [e["MESSAGE"] for e in journald.entries()] == [
            "cut in two by the shim's blocked write", "while down"]  # whole, once
        long = b"x" * (MAX_MESSAGE + 10)
        os.write(shim, records(("stdout", long[:40000], True), ("stdout", long[40000:], True),
                               ("stderr", b"last words", True)))
        os.close(shim)
        successor.release("web")  # the container is gone: the rest, and the store forgets
        assert [len(e["MESSAGE"]) for e in journald.entries()] == [MAX_MESSAGE, 10, 10]
        assert [data for data, _ in notify.received()] == [
            b"FDSTOREREMOVE=1\nFDNAME=web.journal", b"FDSTOREREMOVE=1\nFDNAME=web.shim"]
        successor.close()

    asyncio.run(scenario())
    assert not log_path(tmp_path, "web").exists()  # the shim writes the log file, not the relay


def test_a_line_of_ctrds_own_is_a_record_of_stderr(tmp_path: Path) -> None:
    append_line(log_path(tmp_path, "web"), b"health check failed:\r\nrefused")
    assert [(r.stream, r.content) for r in map(parse_record, log_path(
        tmp_path, "web").read_bytes().splitlines())] == [
        (b"stderr", b"health check failed:"), (b"stderr", b"refused")]


def test_pipes_no_record_claims_are_relayed_and_released(
        tmp_path: Path, sockets: tuple[Listener, Listener]) -> None:
    notify, journald = sockets
    ours, shims = socket.socketpair()
    os.write(shims.fileno(), records(("stderr", b"left over", False)))

    async def scenario() -> None:  # both ends come back, as stored
        relay = LogRelay(tmp_path, [("gone.journal", ours.detach()), ("gone.shim", shims.detach()),
                                    ("strange", os.dup(2)), ("old.stdout", os.dup(2))],
                         journal=JournalWriter(str(journald.path)))
        relay.release_unclaimed()
        relay.close()

    asyncio.run(scenario())
    assert [(e["MESSAGE"], e["CONTAINER_NAME"]) for e in journald.entries()] == [
        ("left over", "gone")]
    assert [data for data, _ in notify.received()] == [
        b"FDSTOREREMOVE=1\nFDNAME=gone.journal", b"FDSTOREREMOVE=1\nFDNAME=gone.shim"]


LISTENER = """
import os, sys
from supervisor.systemd.notify import listen_fds
os.environ["LISTEN_PID"] = str(os.getpid()) if sys.argv[1] == "mine" else "1"
got = listen_fds()
print(got, [os.get_inheritable(fd) for _, fd in got], "LISTEN_FDS" in os.environ)
"""


@pytest.mark.parametrize("pid", ["mine", "another's"])
def test_listen_fds_as_sd_listen_fds(pid: str) -> None:
    """Descriptors from 3 on, named, close-on-exec once taken, the variables removed; none when
    LISTEN_PID names another process."""
    pipes = [os.pipe() for _ in range(2)]

    def place() -> None:
        for target, (read, _) in enumerate(pipes, start=3):
            os.dup2(read, target)

    try:
        result = subprocess.run(
            [sys.executable, "-c", LISTENER, pid], preexec_fn=place, pass_fds=(3, 4),
            env={**os.environ, "PYTHONPATH": str(REPO), "LISTEN_FDS": "2",
                 "LISTEN_FDNAMES": "web.stdout:web.stderr"},
            capture_output=True, text=True, check=True)
    finally:
        for fd in sum(pipes, ()):
            os.close(fd)
    expected = ("[('web.stdout', 3), ('web.stderr', 4)] [False, False] False" if pid == "mine"
                else "[] [] False")
    assert result.stdout.strip() == expected
