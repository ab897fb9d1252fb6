"""A private ctrd for one benchmark part: its own config, state and data directories, address
pool, bridge and metrics port, so it never meets the host's ctrd or a colleague's tests.

Leaving the ``with`` block removes every container through the API, stops ctrd, and, if any of
that failed, kills what is left by PID and removes this run's cgroups and interfaces by name.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from bench import host
from bench.common import CTRD
from supervisor.cli.client import UnixConnection

READY_TIMEOUT = 30.0
CALL_TIMEOUT = 120.0  # a start or a stop; a hung ctrd must not hang the benchmark
STOP_ALL_TIMEOUT = 120.0  # 500 containers stop in about 3 s


class ApiError(RuntimeError):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(f"HTTP {status}: {text}")
        self.status = status


class _Connection(UnixConnection):
    """ctrctl's connection with a time limit (ctrctl waits as long as ctrd takes)."""

    def __init__(self, socket_path: Path, timeout: float) -> None:
        super().__init__(socket_path)
        self.limit = timeout

    def connect(self) -> None:
        super().connect()
        assert self.sock is not None
        self.sock.settimeout(self.limit)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Ctrd:
    """``with Ctrd(prefix, bridge, pool, definitions) as ctrd: ctrd.launch(...)``."""

    def __init__(self, prefix: str, bridge: str, pool: str, definitions: dict[str, str],
                 state_tmpfs: bool = False) -> None:
        """``prefix`` begins the names of all containers started here (and so of their cgroups
        and host veths): what the clean-up looks for. ``state_tmpfs``: the state directory on a
        tmpfs of its own, as /run is where systemd is PID 1 (here /run is on the disk's ext4,
        where each file replaced costs 0.2-1.7 ms)."""
        self.prefix = prefix
        self.state_tmpfs = state_tmpfs
        self.pool = pool
        self.bridge = bridge
        self.definitions = definitions
        self.workdir = Path(tempfile.mkdtemp(prefix=f"ctr-bench-{prefix}-"))
        self.socket = self.workdir / "state" / "ctrd.sock"
        self.metrics_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._shims: set[int] = set()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def __enter__(self) -> Ctrd:
        config = self.workdir / "config"
        config.mkdir()
        (config / "ctrd.toml").write_text(
            f'pool = "{self.pool}"\nbridge = "{self.bridge}"\n'
            f'metrics_listen = "127.0.0.1:{self.metrics_port}"\n')
        for name, text in self.definitions.items():
            (config / f"{name}.toml").write_text(text)
        try:
            if self.state_tmpfs:
                (self.workdir / "state").mkdir()
                subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755,size=64m", "ctr-bench",
                                str(self.workdir / "state")], check=True)
            self._spawn()
        except BaseException:
            self._stop()
            raise
        return self

    def _spawn(self) -> None:
        with open(self.workdir / "ctrd.log", "ab") as log:
            self.process = subprocess.Popen(
                [CTRD, "--config-dir", str(self.workdir / "config"), "--state-dir",
                 str(self.workdir / "state"), "--data-dir", str(self.workdir / "data"),
                 "--log-level", "WARNING"], stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        self._wait_ready()

    def crash_and_restart(self) -> None:
        """kill -9 of ctrd (its containers and shims run on), then a new ctrd that adopts them."""
        assert self.process is not None
        self.shims()
        self.process.kill()
        self.process.wait()
        self._spawn()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"ctrd exited: {self.log_tail()}")
            with contextlib.suppress(FileNotFoundError, ConnectionRefusedError):
                self.call("GET", "/v1/containers")
                return
            time.sleep(0.05)
        raise RuntimeError(f"ctrd not ready in {READY_TIMEOUT:.0f}s: {self.log_tail()}")

    def _unmount_state(self) -> None:
        state = str(self.workdir / "state")
        if self.state_tmpfs and f" {state} " in Path("/proc/self/mountinfo").read_text():
            subprocess.run(["umount", state], check=False)

    def log_tail(self, lines: int = 20) -> str:
        text = (self.workdir / "ctrd.log").read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def shims(self) -> list[int]:
        """ctrd's ctr-shim children, one per running container; remembered for the clean-up."""
        pids = host.children(self.pid, "ctr-shim")
        self._shims.update(pids)
        return pids

    def call(self, method: str, path: str, body: object = None,
             timeout: float = CALL_TIMEOUT) -> Any:
        """One API request on a new connection (as ctrctl makes them); the decoded answer."""
        connection = _Connection(self.socket, timeout)
        try:
            data = None if body is None else json.dumps(body).encode()
            connection.request(method, path, body=data,
                               headers={"Content-Type": "application/json"} if data else {})
            response = connection.getresponse()
            raw = response.read()
        finally:
            connection.close()
        if response.status >= 400:
            raise ApiError(response.status, raw.decode(errors="replace"))
        return json.loads(raw) if raw else None

    def launch(self, definition: str, name: str) -> dict[str, Any]:
        view: dict[str, Any] = self.call("POST", "/v1/containers",
                                         {"definition": definition, "name": name})
        return view

    def get(self, name: str) -> dict[str, Any]:
        view: dict[str, Any] = self.call("GET", f"/v1/containers/{name}")
        return view

    def wait_state(self, name: str, state: str, timeout: float = CALL_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while self.get(name)["state"] != state:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} not {state} after {timeout:.0f}s")
            time.sleep(0.002)

    def remove(self, name: str) -> None:
        self.call("DELETE", f"/v1/containers/{name}")

    def remove_all(self) -> None:
        self.shims()
        self.call("DELETE", "/v1/containers", timeout=STOP_ALL_TIMEOUT)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop()

    def _stop(self) -> None:
        if self.process is None:
            self._unmount_state()
            return
        with contextlib.suppress(ApiError, OSError):
            if self.process.poll() is None:
                self.remove_all()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        left = host.leftovers(self.prefix, self._shims)
        if left:
            print(f"ctrd left {len(left)} things behind ({left[0]} ...): removing them")
            host.force_clean(self.prefix, self._shims)
        self._unmount_state()
        mounts = Path("/proc/self/mountinfo").read_text()
        if str(self.workdir) not in mounts:
            shutil.rmtree(self.workdir, ignore_errors=True)
        else:
            print(f"mounts left under {self.workdir}: kept it")
        self.process = None
