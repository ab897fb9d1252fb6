"""The e2e fixtures: a busybox image, private state/data directories, a ctrd of the test's own,
static probes, and a check that each test leaves the host as it found it."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, build_static


def link_exists(ifname: str) -> bool:
    try:
        socket.if_nametoindex(ifname)
    except OSError:
        return False
    return True


def _host_objects() -> dict[str, set[str]]:
    """Kernel objects a container may create on the host, by kind."""
    def links(kind: str) -> set[str]:
        out = subprocess.run(["ip", "-o", "link", "show", "type", kind], capture_output=True,
                             text=True).stdout
        return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}

    cgroups = {str(p) for p in Path("/sys/fs/cgroup").glob("*/ctr*")} | {
        str(p) for p in Path("/sys/fs/cgroup").glob("*/ctr*/*") if p.is_dir()
    }
    mounts = {line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
              if " - overlay " in line or "/ctr" in line.split()[4]}
    loops = subprocess.run(["losetup", "-a"], capture_output=True, text=True).stdout
    return {
        "veth": links("veth"),
        "bridge": links("bridge"),
        "ifb": links("ifb"),
        "cgroup": cgroups,
        "mount": mounts,
        "loop": {line.split(":")[0] for line in loops.splitlines()},
    }


@pytest.fixture(scope="session", autouse=True)
def no_host_registries(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No test pulls from a registry off this host: a short name such as "busybox" would go
    through the host's registries.conf, whose Debian aliases name docker.io. A test of pulls
    brings its own file (``CONTAINERS_REGISTRIES_CONF``), naming registries on loopback."""
    conf = tmp_path_factory.mktemp("containers") / "registries.conf"
    conf.write_text("")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CONTAINERS_REGISTRIES_CONF", str(conf))
        yield


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Every test must leave the host as it found it: no veth, IFB, cgroup, mount or loop
    device."""
    before = _host_objects()
    yield
    after = _host_objects()
    leaked = {kind: sorted(after[kind] - before[kind]) for kind in after
              if after[kind] - before[kind]}
    assert not leaked, f"left behind on the host: {leaked}"


@pytest.fixture(scope="session")
def busybox_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default image, built by the project's own builder into a private data dir."""
    data = tmp_path_factory.mktemp("image-data")
    subprocess.run([str(REPO / "rootfs" / "build-busybox")], check=True,
                   env={**os.environ, "DATA_DIR": str(data)}, capture_output=True)
    return data / "images" / "busybox"


@pytest.fixture(scope="session")
def probes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/probes/*.c built as static programs, in a directory a test binds into a container:
    attacks are run from inside, never on the host."""
    return build_static(REPO / "tests" / "probes", tmp_path_factory.mktemp("probes"))


@dataclass
class Env:
    """Private state and data directories, and a veth network of the test's own."""

    state: Path
    data: Path
    pool: str = "10.214.0.0/16"
    bridge: str = f"ctrt{os.getpid() % 100000}"
    binary: Path | None = None  # ctrctl as a program (its front end), else the Python module

    def command(self, *args: str) -> list[str]:
        ctrctl = [str(self.binary)] if self.binary else [sys.executable, "-m",
                                                          "supervisor.cli.main"]
        return [*ctrctl, "--state-dir", str(self.state), "--data-dir", str(self.data), *args]

    @property
    def environ(self) -> dict[str, str]:
        return {**os.environ, "CTR_NETWORK_POOL": self.pool, "CTR_BRIDGE": self.bridge}

    def ctrctl(self, *args: str, timeout: float = 60, check: bool = False,
               input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.command(*args), capture_output=True, text=True,
                              timeout=timeout, check=check, input=input, cwd=REPO,
                              env=self.environ)

    def start_background(self, *args: str) -> subprocess.Popen[str]:
        """``ctrctl ARGS`` without waiting for it."""
        return subprocess.Popen(self.command(*args), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=REPO, env=self.environ)

    def start(self, *args: str) -> subprocess.Popen[str]:
        """``ctrctl run --rm ARGS`` in the background; returns once it printed its first line."""
        proc = subprocess.Popen(self.command("run", "--rm", *args), stdout=subprocess.PIPE,
                                text=True, cwd=REPO, env=self.environ)
        assert proc.stdout is not None
        first = proc.stdout.readline().strip()
        assert first == "ready", f"container did not come up: {first!r}"
        return proc

    def run(self, *command: str, flags: tuple[str, ...] = (),
            **kwargs: object) -> subprocess.CompletedProcess[str]:
        """``ctrctl run --rm [flags] -- command``."""
        return self.ctrctl("run", "--rm", *flags, "--", *command, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def env(tmp_path: Path, busybox_image: Path) -> Iterator[Env]:
    """Private state and data directories with the busybox image in them."""
    state, data = tmp_path / "state", tmp_path / "data"
    (data / "images").mkdir(parents=True)
    (data / "images" / "busybox").symlink_to(busybox_image)
    environment = Env(state=state, data=data)
    yield environment
    # ctrctl run keeps its bridge for the next run, as docker0 stays: the test's goes with it
    if link_exists(environment.bridge):
        subprocess.run(["ip", "link", "del", environment.bridge], check=False)
    shutil.rmtree(tmp_path, ignore_errors=True)


class Daemon:
    """A ctrd of the test's own: private directories, its own network, no metrics listener."""

    def __init__(self, env: Env, config_dir: Path) -> None:
        self.env = env
        self.config_dir = config_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = config_dir.parent / "ctrd.log"
        config_dir.mkdir(parents=True, exist_ok=True)
        (config_dir / "ctrd.toml").write_text(
            f'pool = "{env.pool}"\nbridge = "{env.bridge}"\nmetrics_listen = "off"\n')

    @property
    def socket(self) -> Path:
        return self.env.state / "ctrd.sock"

    def define(self, name: str, text: str) -> None:
        (self.config_dir / f"{name}.toml").write_text(text)

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "supervisor.ctrd", "--config-dir",
                 str(self.config_dir), "--state-dir", str(self.env.state), "--data-dir",
                 str(self.env.data)], stdout=log, stderr=log, cwd=REPO)
        deadline = time.monotonic() + 15
        while self.env.ctrctl("list").returncode != 0:
            assert self.proc.poll() is None, f"ctrd exited: {self.log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, "ctrd did not come up"
            time.sleep(0.05)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)
        self.proc.wait(timeout=10)
        self.proc = None

    def ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = self.env.ctrctl(*args)
        if check:
            assert result.returncode == 0, f"ctrctl {' '.join(args)}: {result.stderr}"
        return result

    def status(self, name: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.ctl("status", name, "-o", "json").stdout)
        return data

    def wait_for(self, name: str, predicate: Callable[[dict[str, Any]], bool],
                 timeout: float = 15) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            status = self.status(name)
            if predicate(status):
                return status
            assert time.monotonic() < deadline, f"{name} never got there: {status}"
            time.sleep(0.05)

    def shutdown(self) -> None:
        """Stop every container through ctrd, then ctrd; whatever remains is torn down here."""
        if self.proc is not None and self.proc.poll() is None:
            listing = self.env.ctrctl("list", "-o", "json")
            if listing.returncode == 0:
                for container in json.loads(listing.stdout):
                    self.env.ctrctl("stop", container["name"])
            self.kill(signal.SIGTERM)
        _remove_leftovers(self.env)


def _remove_leftovers(env: Env) -> None:
    """Containers a crashed test left behind: kill and tear down through the runtime."""
    from supervisor.model.spec import ContainerSpec
    from supervisor.runtime import network, warm
    from supervisor.runtime.cgroups import open_driver
    from supervisor.runtime.container import Container, Options
    from supervisor.runtime.paths import Dirs

    for record in env.state.glob("containers/*/state.json"):
        spec = ContainerSpec(name=record.parent.name, image="")
        with contextlib.suppress(LookupError):
            Container.adopt(spec, Dirs(env.state, env.data), open_driver("auto"),
                            Options(pool=env.pool, bridge=env.bridge)).teardown()
    network.remove_bridge_if_unused(env.state, env.bridge)  # a killed ctrd keeps it
    warm.remove_leftovers(open_driver("auto"), env.state)  # a killed ctrd's prepared starts


@pytest.fixture
def ctrd(env: Env, tmp_path: Path) -> Iterator[Daemon]:
    daemon = Daemon(env, tmp_path / "etc")
    try:
        yield daemon
    finally:
        daemon.shutdown()
