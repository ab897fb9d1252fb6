"""Shared fixtures: a busybox image, private state/data directories, a leak check, ``ctrctl``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


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
        "cgroup": cgroups,
        "mount": mounts,
        "loop": {line.split(":")[0] for line in loops.splitlines()},
    }


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Every test must leave the host as it found it: no veth, cgroup, mount or loop device."""
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


@dataclass
class Env:
    """Private state and data directories, and a veth network of the test's own."""

    state: Path
    data: Path
    pool: str = "10.214.0.0/16"
    bridge: str = f"ctrt{os.getpid() % 100000}"

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "supervisor.cli.main", "--state-dir", str(self.state),
                "--data-dir", str(self.data), *args]

    @property
    def environ(self) -> dict[str, str]:
        return {**os.environ, "CTR_NETWORK_POOL": self.pool, "CTR_BRIDGE": self.bridge}

    def ctrctl(self, *args: str, timeout: float = 60, check: bool = False,
               input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.command(*args), capture_output=True, text=True,
                              timeout=timeout, check=check, input=input, cwd=REPO,
                              env=self.environ)

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
    yield Env(state=state, data=data)
    shutil.rmtree(tmp_path, ignore_errors=True)
