"""``ctrctl`` and health and readiness: the state as ``docker ps`` shows it, ``status``, and
``start --wait`` / ``start --service`` (the ExecStart of ctr@.service), the latter run as systemd
runs it: the listening socket at fd 3 with LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES, a notify
socket to tell READY=1 on. Against test_api.py's backend, served on a tmp socket."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.unit.test_cli import Ctl, ctl

__all__ = ["ctl"]  # test_cli.py's fixture: ctrctl against the fake backend


def test_list_and_status_show_the_health_and_readiness(ctl: Ctl) -> None:
    web = ctl.backend.views["web"]
    ctl.backend.views["web"] = replace(web, health="healthy", ready=False)
    rows = {line.split()[0]: line for line in ctl("list").stdout.splitlines()[1:]}
    assert "running (healthy)" in rows["web"] and "stopped" in rows["db"]
    status = ctl("status", "web").stdout.splitlines()
    assert "Health:     healthy" in status and "Ready:      not yet" in status
    assert not any(line.startswith(("Health:", "Ready:")) for line in
                   ctl("status", "db").stdout.splitlines())


def test_start_wait_asks_ctrd_to_answer_once_ready(ctl: Ctl) -> None:
    assert ctl("start", "--wait", "db").stdout == "db\n"
    assert ctl("start", "db").returncode == 0
    assert ctl.backend.starts == [("db", True, []), ("db", False, [])]
    assert "--wait" in ctl("start", "--help").stdout


@pytest.fixture
def systemd_side(tmp_path: Path) -> Iterator[tuple[socket.socket, socket.socket]]:
    """A listening socket, as ctr@db.socket holds, and a notify socket, as systemd's."""
    listening = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listening.bind(str(tmp_path / "db.sock"))
    listening.listen()
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify"))
    notify.settimeout(20)
    yield listening, notify
    listening.close()
    notify.close()


def test_start_service_hands_the_sockets_over_tells_ready_and_stays_as_sleep(
        ctl: Ctl, tmp_path: Path, systemd_side: tuple[socket.socket, socket.socket]) -> None:
    listening, notify = systemd_side
    fd = listening.fileno()
    # As systemd execs ExecStart: the socket at fd 3, LISTEN_PID the process's own pid.
    execs = ("import os, sys; fd = int(sys.argv[1]); os.dup2(fd, 3); os.close(fd); "
             "os.environ['LISTEN_PID'] = str(os.getpid()); os.execv(sys.argv[2], sys.argv[2:])")
    proc = subprocess.Popen([sys.executable, "-c", execs, str(fd),
                             *ctl.command("start", "--service", "db")], pass_fds=(fd,),
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify"),
                                 "LISTEN_FDS": "1", "LISTEN_FDNAMES": "ctr@db.socket"})
    try:
        message = notify.recv(4096).decode()
        assert message == "READY=1"
        inode = os.fstat(fd).st_ino
        assert ctl.backend.starts == [("db", True, [("ctr@db.socket", inode)])]
        # The unit's main process stays, as the same pid: a sleep, holding no socket of it.
        deadline = time.monotonic() + 20
        while (cmdline := Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0"))[0] \
                != b"/bin/sleep" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert cmdline[:2] == [b"/bin/sleep", b"infinity"]
        fds = Path(f"/proc/{proc.pid}/fd")
        held = [os.readlink(fds / n) for n in os.listdir(fds)]
        assert f"socket:[{inode}]" not in held
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)


def test_start_service_fails_with_the_reason_and_tells_no_ready(
        ctl: Ctl, tmp_path: Path, systemd_side: tuple[socket.socket, socket.socket]) -> None:
    _, notify = systemd_side
    ctl.backend.views["db"] = replace(ctl.backend.views["db"], state="failed")
    result = subprocess.run([*ctl.command("start", "--service", "db")], capture_output=True,
                            text=True, cwd=REPO, timeout=30,
                            env={**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify")})
    assert result.returncode == 1
    assert result.stderr == "ctrctl: container db: start failed: exec /bin/nope: not found\n"
    notify.settimeout(0)
    with pytest.raises(BlockingIOError):
        notify.recv(1)

