"""ctr-runtime's compiled front end (shim/ctr-runtime.c) against the Python command it stands
before: the plain start, state, kill and delete answered without Python, with what Python would
answer, and everything else handed to Python with the arguments as given, so that its errors
are Python's word for word. The other OCI tests (lifecycle, podman, containerd) run through the
front end too."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_oci_lifecycle import cgroup_dirs
from tests.frontends import Recorded, build
from tests.oci_fixtures import (
    PYTHON_RUNTIME,
    Runtime,
    config,
    make_bundle,
    messages,
    runtime_at,
)

LOOP = ["/bin/sh", "-c", "while :; do sleep 0.1; done"]


@pytest.fixture
def recorded(tmp_path: Path) -> Recorded:
    return Recorded(tmp_path, "ctr-runtime.c", PYTHON_RUNTIME)


@pytest.fixture
def front(tmp_path: Path, recorded: Recorded) -> Iterator[Runtime]:
    with runtime_at(tmp_path / "root") as runtime:
        runtime.binary = recorded.binary
        yield runtime


@pytest.fixture
def bundle(tmp_path: Path, busybox_image: Path) -> Path:
    document = config(LOOP)
    document["annotations"] = {"org.example/path": "a/b", "org.example.word": "grüße"}
    return make_bundle(tmp_path / "bundle", busybox_image, document)


def python_state(front: Runtime, cid: str) -> dict[str, Any]:
    return Runtime(front.root, PYTHON_RUNTIME).state(cid)


def test_start_state_kill_and_delete_run_without_python_and_say_what_it_says(
        front: Runtime, recorded: Recorded, bundle: Path) -> None:
    front("create", "--bundle", str(bundle), "oci-front")
    assert [call.split()[-1] for call in recorded.calls()] == ["oci-front"]  # create: Python's
    created = front.state("oci-front")
    assert created["status"] == "created" and created == python_state(front, "oci-front")
    assert created["annotations"] == {"org.example/path": "a/b", "org.example.word": "grüße"}
    front("start", "oci-front")
    running = front.state("oci-front")
    assert running["status"] == "running" and running == python_state(front, "oci-front")
    front("pause", "oci-front")  # Python's (the front end has no pause); state reads it back
    assert front.state("oci-front")["status"] == "paused" == python_state(front, "oci-front")[
        "status"]
    front("resume", "oci-front")
    front("kill", "oci-front", "SIGKILL")
    front.wait_status("oci-front", "stopped")
    stopped = front.state("oci-front")
    assert stopped["pid"] == 0 and stopped == python_state(front, "oci-front")
    assert cgroup_dirs("oci-front")
    front("delete", "oci-front")
    assert not (front.root / "oci-front").exists() and not cgroup_dirs("oci-front")
    handed = [call.split()[2] for call in recorded.calls()]
    assert handed == ["create", "pause", "resume"]  # nothing of start, state, kill, delete


@pytest.mark.parametrize("make, args", [
    (None, ("state", "oci-none")),  # no such container
    ("running", ("start", "oci-err")),  # only a created one starts
    ("running", ("delete", "oci-err")),  # a running one needs --force
    ("created", ("kill", "--all", "oci-err", "KILL")),  # --all: Python's
    ("created", ("kill", "oci-err", "SIGNOPE")),  # a word no signal has
    ("created", ("kill", "oci-err", "RTMIN+2")),  # a real-time signal: Python reads it
    ("created", ("--debug", "state", "oci-err")),
    (None, ("state", "bad/id")),  # not an id
])
def test_what_is_not_the_plain_case_goes_to_python_as_given(
        front: Runtime, recorded: Recorded, bundle: Path, make: str | None,
        args: tuple[str, ...]) -> None:
    if make is not None:
        front("create", "--bundle", str(bundle), "oci-err")
        if make == "running":
            front("start", "oci-err")
    before = len(recorded.calls())
    result = front(*args, check=False)
    assert recorded.calls()[before:] == [" ".join(["--root", str(front.root), *args])]
    python = Runtime(front.root, PYTHON_RUNTIME)
    if result.returncode != 0:  # the same refusal, in the same words
        again = python(*args, check=False)
        assert again.returncode == result.returncode and messages(again) == messages(result)


def test_a_delete_of_a_stopped_container_with_force_is_the_plain_case(
        front: Runtime, recorded: Recorded, bundle: Path) -> None:
    """podman's ``delete --force`` after its container ended."""
    front("create", "--bundle", str(bundle), "oci-force")
    front("start", "oci-force")
    front("kill", "oci-force", "9")
    front.wait_status("oci-force", "stopped")
    front("delete", "--force", "oci-force")
    assert not (front.root / "oci-force").exists() and not cgroup_dirs("oci-force")
    assert [call.split()[2] for call in recorded.calls()] == ["create"]


def test_a_front_end_built_to_hand_over_to_itself_says_so(tmp_path: Path) -> None:
    binary = tmp_path / "ctr-runtime"
    build("ctr-runtime.c", binary, binary)
    result = subprocess.run([str(binary), "features"], capture_output=True, text=True,
                            timeout=10)
    assert result.returncode == 1 and "is this front end, not the Python command" in result.stderr
