"""containerd from Debian's packages drives ctr-runtime through its runc shim (``ctr run
--runc-binary``), as a Kubernetes node's containerd would: a private containerd (its own root,
state and socket, started by the test), an image imported from a ``podman save`` archive, and a
run, an exec, a pause, a kill and a delete of a task."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.oci_fixtures import CTR_RUNTIME, IMAGE, podman_with_busybox, stop_process

NAMESPACE = "ctr-oci"  # containerd's cgroupsPath is /NAMESPACE/ID: the leak check watches it
SHARED = Path("/run/containerd")  # the shim's sockets and ctr's FIFOs live here, whatever else


class Containerd:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.socket = directory / "containerd.sock"
        self.runc_root = directory / "runc"

    def ctr(self, *args: str, check: bool = True,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(["ctr", "--address", str(self.socket), "--namespace", NAMESPACE,
                               *args], capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
        if check:
            assert done.returncode == 0, f"ctr {' '.join(args)}: {done.stderr}"
        return done

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.ctr("run", "--runc-binary", str(CTR_RUNTIME), "--runc-root",
                        str(self.runc_root), *args, check=check)

    def task_status(self, name: str) -> str:
        for line in self.ctr("task", "ls").stdout.splitlines()[1:]:
            fields = line.split()
            if fields[0] == name:
                return fields[2]
        return "none"


@pytest.fixture(scope="module")
def containerd(tmp_path_factory: pytest.TempPathFactory,
               busybox_image: Path) -> Iterator[Containerd]:
    directory = tmp_path_factory.mktemp("oci-containerd")
    archive = directory / "busybox.tar"
    podman = podman_with_busybox(tmp_path_factory.mktemp("pod"), busybox_image)  # runroot: <50
    podman("save", "-o", str(archive), IMAGE)
    found = Containerd(directory)
    (directory / "config.toml").write_text(f"""version = 2
root = "{directory}/root"
state = "{directory}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{found.socket}"
[ttrpc]
  address = "{found.socket}.ttrpc"
[debug]
  address = "{directory}/debug.sock"
""")
    had_shared = SHARED.exists()
    before = set(os.listdir(SHARED / "s")) if (SHARED / "s").is_dir() else set()
    log = (directory / "containerd.log").open("w")
    daemon = subprocess.Popen(["containerd", "--config", str(directory / "config.toml")],
                              stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while found.ctr("version", check=False).returncode != 0:
            assert daemon.poll() is None, (directory / "containerd.log").read_text()
            assert time.monotonic() < deadline, "containerd did not come up"
            time.sleep(0.1)
        found.ctr("image", "import", str(archive))
        yield found
    finally:
        with contextlib.suppress(Exception):
            for name in found.ctr("task", "ls", "-q", check=False).stdout.split():
                found.ctr("task", "kill", "-s", "SIGKILL", name, check=False)
                found.ctr("task", "delete", "-f", name, check=False)
            for name in found.ctr("container", "ls", "-q", check=False).stdout.split():
                found.ctr("container", "rm", name, check=False)
            found.ctr("namespace", "rm", NAMESPACE, check=False)
        stop_process(daemon)
        log.close()
        for entry in set(os.listdir(SHARED / "s")) - before if (SHARED / "s").is_dir() else ():
            with contextlib.suppress(OSError):
                os.unlink(SHARED / "s" / entry)
        if not had_shared:
            shutil.rmtree(SHARED, ignore_errors=True)


def test_run_exits_with_the_process(containerd: Containerd) -> None:
    done = containerd.run("--rm", f"{IMAGE}:latest", "oci-ctrd-run", "sh", "-c",
                          "echo from containerd; exit 6", check=False)
    assert (done.returncode, done.stdout) == (6, "from containerd\n")
    assert os.listdir(containerd.runc_root / NAMESPACE) == []


def test_a_task_runs_execs_pauses_and_is_killed_and_deleted(containerd: Containerd) -> None:
    containerd.run("-d", f"{IMAGE}:latest", "oci-ctrd-task", "sleep", "1000")
    try:
        assert containerd.task_status("oci-ctrd-task") == "RUNNING"
        cgroup = Path(f"/sys/fs/cgroup/memory/{NAMESPACE}/oci-ctrd-task")
        assert cgroup.is_dir()
        done = containerd.ctr("task", "exec", "--exec-id", "e1", "oci-ctrd-task", "sh", "-c",
                              "echo exec $(cat /proc/1/cmdline | tr '\\0' ' '); exit 2",
                              check=False)
        assert (done.returncode, done.stdout) == (2, "exec sleep 1000\n")
        pids = containerd.ctr("task", "ps", "oci-ctrd-task").stdout.splitlines()[1:]
        assert len(pids) == 1
        containerd.ctr("task", "pause", "oci-ctrd-task")
        assert containerd.task_status("oci-ctrd-task") == "PAUSED"
        containerd.ctr("task", "resume", "oci-ctrd-task")
        assert containerd.task_status("oci-ctrd-task") == "RUNNING"
        containerd.ctr("task", "kill", "-s", "SIGKILL", "oci-ctrd-task")
        deadline = time.monotonic() + 20
        while containerd.task_status("oci-ctrd-task") != "STOPPED":
            assert time.monotonic() < deadline, "the task never stopped"
            time.sleep(0.05)
        containerd.ctr("task", "delete", "oci-ctrd-task")
        assert not cgroup.exists()
        assert not (containerd.runc_root / NAMESPACE / "oci-ctrd-task").exists()
    finally:
        containerd.ctr("task", "delete", "-f", "oci-ctrd-task", check=False)
        containerd.ctr("container", "rm", "oci-ctrd-task", check=False)
