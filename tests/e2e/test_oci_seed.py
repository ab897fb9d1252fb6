"""The seed exercise, run by ctr-runtime as given: bundles for A (a client that sends each line it
reads on stdin) and B (an echo server), and a bridge whose config.json joins A's network
namespace and B's IPC namespace by path, relaying A's lines to B over a System V message queue
and B's answers back; then the same with B's mount namespace instead of its IPC one (over a unix
socket in B's file system). The test types into A and reads the echoes A prints."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import build_static
from tests.oci_fixtures import (
    PROGRAMS,
    Runtime,
    config,
    make_bundle,
    runtime_at,
    stop_process,
    tools_mount,
)

PORT = "9000"
KEY = "0x5eed"
SOCKET = "/run/echo.sock"
NS_FILES = {"ipc": "ipc", "mount": "mnt"}  # /proc/PID/ns/ names


@pytest.fixture(scope="module")
def tools(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_static(PROGRAMS, tmp_path_factory.mktemp("oci-seed-tools"))


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    with runtime_at(tmp_path / "root") as found:
        yield found


def namespaces(*joined: tuple[str, str]) -> list[dict[str, str]]:
    """The default namespaces, those of ``joined`` (type, path) joined instead of new."""
    kinds = dict(joined)
    return [{"type": kind, **({"path": kinds[kind]} if kind in kinds else {})}
            for kind in ("pid", "network", "ipc", "uts", "mount")]


def seed_bundle(directory: Path, busybox: Path, tools: Path, args: list[str],
                *joined: tuple[str, str]) -> Path:
    document: dict[str, Any] = config(args, namespaces=namespaces(*joined))
    if "mount" in dict(joined):
        document["mounts"] = []  # it lives in the joined namespace's root, with its mounts
    else:
        document["mounts"].append(tools_mount(tools))
    return make_bundle(directory, busybox, document)


def converse(runtime: Runtime, tmp_path: Path, busybox: Path, tools: Path,
             server: list[str], bridge: list[str], joined_kind: str) -> list[str]:
    """Create A (waiting), run B and the bridge (joining A's network and B's ``joined_kind``
    namespace), start A, type two lines into it; what A printed."""
    a = seed_bundle(tmp_path / "a", busybox, tools, ["/tools/client", PORT])
    b = seed_bundle(tmp_path / "b", busybox, tools, server)
    processes: list[subprocess.Popen[str]] = []
    try:
        client = subprocess.Popen(runtime.command("create", "--bundle", str(a), "oci-seed-a"),
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        processes.append(client)
        assert client.wait(timeout=60) == 0  # A's process keeps these pipes: its stdio
        echo = subprocess.Popen(runtime.command("run", "--bundle", str(b), "oci-seed-b"),
                                stdout=subprocess.PIPE, text=True)
        processes.append(echo)
        assert echo.stdout is not None and echo.stdout.readline() == "ready\n"
        a_pid, b_pid = runtime.state("oci-seed-a")["pid"], runtime.state("oci-seed-b")["pid"]
        between = seed_bundle(tmp_path / "bridge", busybox, tools, bridge,
                              ("network", f"/proc/{a_pid}/ns/net"),
                              (joined_kind, f"/proc/{b_pid}/ns/{NS_FILES[joined_kind]}"))
        relay = subprocess.Popen(runtime.command("run", "--bundle", str(between),
                                                 "oci-seed-bridge"),
                                 stdout=subprocess.PIPE, text=True)
        processes.append(relay)
        assert relay.stdout is not None and relay.stdout.readline() == "listening\n"
        runtime("start", "oci-seed-a")
        assert client.stdin is not None and client.stdout is not None
        seen = []
        for line in ("hello from A", "through the bridge"):
            client.stdin.write(line + "\n")
            client.stdin.flush()
            seen.append(client.stdout.readline().rstrip("\n"))
        client.stdin.close()
        runtime.wait_status("oci-seed-a", "stopped")  # its stdin ended: the client is done
        return seen
    finally:
        for name in ("oci-seed-a", "oci-seed-bridge", "oci-seed-b"):
            runtime("delete", "--force", name, check=False)
        for process in processes:
            stop_process(process)


def test_a_bridge_in_as_network_and_bs_ipc_namespace(runtime: Runtime, tmp_path: Path,
                                                    busybox_image: Path, tools: Path) -> None:
    seen = converse(runtime, tmp_path, busybox_image, tools, ["/tools/echo", "msgq", KEY],
                    ["/tools/bridge", PORT, "msgq", KEY], "ipc")
    assert seen == ["echo: hello from A", "echo: through the bridge"]


def test_a_bridge_in_as_network_and_bs_mount_namespace(runtime: Runtime, tmp_path: Path,
                                                      busybox_image: Path,
                                                      tools: Path) -> None:
    seen = converse(runtime, tmp_path, busybox_image, tools, ["/tools/echo", "unix", SOCKET],
                    ["/tools/bridge", PORT, "unix", SOCKET], "mount")
    assert seen == ["echo: hello from A", "echo: through the bridge"]


def test_without_the_joins_the_bridge_reaches_neither(runtime: Runtime, tmp_path: Path,
                                                     busybox_image: Path, tools: Path) -> None:
    """A bridge in namespaces of its own finds no queue of B's (it makes its own, which no
    echo server reads) and no A to listen for: the exercise's joins are what connects them."""
    runtime("run", "--detach", "--bundle", str(seed_bundle(
        tmp_path / "b", busybox_image, tools, ["/tools/echo", "msgq", KEY])), "oci-seed-b")
    lonely = seed_bundle(tmp_path / "lonely", busybox_image, tools,
                         ["/bin/sh", "-c", "ipcs -q | grep -c 0x00005eed"])
    done = runtime("run", "--bundle", str(lonely), "oci-seed-lonely", check=False)
    assert done.stdout.strip() == "0"  # B's queue is not in this IPC namespace
