"""What the ctr-runtime tests run against: the command itself with a private ``--root``, bundles
of the busybox tree, and static programs built for them (the seed exercise's client, bridge and
echo server)."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from supervisor.cli.ctr_runtime.info import template
from supervisor.oci.state import SHARED
from tests.conftest import REPO
from tests.images_fixtures import PODMAN_ISOLATION

# What engines run: the compiled front end (make shim), which hands all but the plain start,
# state, kill and delete to the Python command
CTR_RUNTIME = REPO / "supervisor" / "runtime" / "libexec" / "ctr-runtime"
PYTHON_RUNTIME = Path(sys.executable).parent / "ctr-runtime"
PROGRAMS = REPO / "tests" / "oci"
IMAGE = "localhost/oci-busybox"  # the busybox tree, imported into podman


def config(args: list[str], **linux: Any) -> dict[str, Any]:
    """ctr-runtime's default config.json with ``args``, no terminal, a writable root, and
    ``linux`` members replaced."""
    document = copy.deepcopy(template(rootless=False))
    document["process"]["args"] = args
    document["process"]["terminal"] = False
    document["root"]["readonly"] = False
    document["linux"].update(linux)
    return document


def make_bundle(directory: Path, rootfs: Path, document: dict[str, Any]) -> Path:
    """A bundle in ``directory``: a copy of the tree ``rootfs`` (the container writes its root
    in place) and ``document`` as its config.json."""
    directory.mkdir(parents=True, exist_ok=True)
    if not (directory / "rootfs").exists():
        shutil.copytree(rootfs, directory / "rootfs", symlinks=True)
    write_config(directory, document)
    return directory


def messages(result: subprocess.CompletedProcess[str]) -> str:
    """What ctr-runtime logged to stderr (logrus's ``level=... msg="..."`` lines), unquoted."""
    found = []
    for line in result.stderr.splitlines():
        _, _, quoted = line.partition(" msg=")
        found.append(json.loads(quoted) if quoted else line)
    return "\n".join(found)


def write_config(bundle: Path, document: dict[str, Any]) -> None:
    (bundle / "config.json").write_text(json.dumps(document, indent=2))


class Runtime:
    """ctr-runtime (or ``binary``) with a root of the test's own; ``cleanup`` deletes whatever
    is left."""

    def __init__(self, root: Path, binary: Path = CTR_RUNTIME) -> None:
        self.root = root
        self.binary = binary

    def command(self, *args: str) -> list[str]:
        return [str(self.binary), "--root", str(self.root), *args]

    def __call__(self, *args: str, check: bool = True, timeout: float = 60,
                 **kwargs: Any) -> subprocess.CompletedProcess[str]:
        """Its output through files, not pipes: a container's process keeps the stdio of the
        ``create`` that made it, and a pipe would not end before the container does."""
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            done = subprocess.run(self.command(*args), stdout=out, stderr=err, text=True,
                                  timeout=timeout, **kwargs)
            out.seek(0)
            err.seek(0)
            result = subprocess.CompletedProcess(done.args, done.returncode, out.read(),
                                                 err.read())
        if check:
            assert result.returncode == 0, f"ctr-runtime {' '.join(args)}: {result.stderr}"
        return result

    def state(self, cid: str) -> dict[str, Any]:
        found: dict[str, Any] = json.loads(self("state", cid).stdout)
        return found

    def status(self, cid: str) -> str:
        return str(self.state(cid)["status"])

    def wait_status(self, cid: str, wanted: str, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while (status := self.status(cid)) != wanted:
            assert time.monotonic() < deadline, f"{cid} is {status}, never {wanted}"
            time.sleep(0.02)

    def cleanup(self) -> None:
        if not self.root.is_dir():
            return
        for entry in os.listdir(self.root):
            if (self.root / entry / "state.json").exists():
                self("delete", "--force", entry, check=False)
        leftovers = [e for e in os.listdir(self.root) if e != SHARED]  # the filter cache
        assert leftovers == [], f"ctr-runtime left {leftovers} in {self.root}"


@contextlib.contextmanager
def runtime_at(root: Path) -> Iterator[Runtime]:
    runtime = Runtime(root)
    try:
        yield runtime
    finally:
        runtime.cleanup()


def tools_mount(tools: Path) -> dict[str, Any]:
    return {"destination": "/tools", "type": "bind", "source": str(tools),
            "options": ["rbind", "ro"]}


def stop_process(proc: subprocess.Popen[Any]) -> None:
    """End a process the test started (by its pid), and reap it."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)


def eventually(check: Callable[[], bool], what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.02)


class Podman:
    """podman with a store of the test's own, driving ctr-runtime."""

    def __init__(self, root: Path, options: tuple[str, ...] = ()) -> None:
        self.root = root
        self.options = options  # of every run

    def __call__(self, *args: str, check: bool = True,
                 timeout: float = 120) -> subprocess.CompletedProcess[str]:
        command = ["podman", "--root", str(self.root / "storage"), "--runroot",
                   str(self.root / "run"), "--tmpdir", str(self.root / "tmp"),
                   *PODMAN_ISOLATION, "--runtime", str(CTR_RUNTIME), *args]
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            done = subprocess.run(command, stdout=out, stderr=err, text=True, timeout=timeout,
                                  stdin=subprocess.DEVNULL)
            out.seek(0)
            err.seek(0)
            result = subprocess.CompletedProcess(command, done.returncode, out.read(),
                                                 err.read())
        if check:
            assert result.returncode == 0, f"podman {' '.join(args)}: {result.stderr}"
        return result

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self("run", *self.options, *args, check=check)

    def status(self, name: str) -> str:
        listing = self("ps", "-a", "--format", "json").stdout
        return next(str(c["State"]) for c in json.loads(listing) if name in c["Names"])

    def container_id(self, name: str) -> str:
        return self("inspect", "--format", "{{.Id}}", name).stdout.strip()


def podman_with_busybox(root: Path, busybox: Path, options: tuple[str, ...] = ()) -> Podman:
    """A podman store with IMAGE, made with ``podman import`` of the busybox tree."""
    root.mkdir(parents=True, exist_ok=True)
    found = Podman(root, options)
    tree = root / "busybox.tar"
    with tarfile.open(tree, "w") as archive:
        archive.add(busybox, arcname=".")
    found("import", str(tree), IMAGE)
    return found
