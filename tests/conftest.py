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
    veths = subprocess.run(["ip", "-o", "link", "show", "type", "veth"], capture_output=True,
                           text=True).stdout
    cgroups = {
        str(p) for base in Path("/sys/fs/cgroup").iterdir()
        if (base / "ctr").is_dir() for p in (base / "ctr").iterdir() if p.is_dir()
    }
    mounts = {line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
              if " - overlay " in line or "/ctr" in line.split()[4]}
    loops = subprocess.run(["losetup", "-a"], capture_output=True, text=True).stdout
    return {
        "veth": {line.split(":")[1].strip().split("@")[0] for line in veths.splitlines()},
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
    state: Path
    data: Path

    def ctrctl(self, *args: str, timeout: float = 60, check: bool = False,
               input: str | None = None) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "supervisor.cli.main", "--state-dir", str(self.state),
               "--data-dir", str(self.data), *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=check,
                              input=input, cwd=REPO)

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
