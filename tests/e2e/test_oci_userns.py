"""A bundle with a user namespace (``linux.uidMappings``/``gidMappings``), as podman's
``--uidmap`` and containerd's user-namespaced pods hand one over: the engine leases the range
and gives the root its owners; ctr-runtime maps it, and container root is that range's first id
on the host, with no power over the host's files. tests/e2e/test_oci_podman.py drives it from
podman."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.oci_fixtures import (
    Runtime,
    config,
    eventually,
    make_bundle,
    messages,
    runtime_at,
    write_config,
)

HOST_ID = 200000  # the engine's pick (podman's --uidmap 0:200000:65536)
SIZE = 65536
MAPPING = [{"containerID": 0, "hostID": HOST_ID, "size": SIZE}]
PROBE = ("cat /proc/self/uid_map /proc/self/gid_map; id -u; touch /made; "
         "echo x > /host/written && echo wrote || echo refused")


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    with runtime_at(tmp_path / "root") as found:
        yield found


def bundle(tmp_path: Path, busybox: Path, script: str, *, userns: bool,
           **linux: Any) -> Path:
    """A bundle running ``script`` with the host directory ``tmp_path/host`` (root's, 0755)
    bound writable at /host; with ``userns`` its root owned by the mapped range, as an engine
    hands it over."""
    host = tmp_path / "host"
    host.mkdir(mode=0o755, exist_ok=True)
    document = config(["/bin/sh", "-c", script], **linux)
    document["mounts"].append({"destination": "/host", "type": "bind", "source": str(host),
                               "options": ["rbind", "rw"]})
    if userns:
        document["linux"]["namespaces"].append({"type": "user"})
        document["linux"]["uidMappings"] = MAPPING
        document["linux"]["gidMappings"] = MAPPING
    path = make_bundle(tmp_path / ("userns" if userns else "plain"), busybox, document)
    if userns:
        for directory, names, files in os.walk(path / "rootfs"):
            for name in [*names, *files]:
                os.lchown(os.path.join(directory, name), HOST_ID, HOST_ID)
        os.lchown(path / "rootfs", HOST_ID, HOST_ID)
    return path


def test_root_inside_is_the_mapped_range_and_cannot_write_the_hosts_files(
        runtime: Runtime, tmp_path: Path, busybox_image: Path) -> None:
    path = bundle(tmp_path, busybox_image, PROBE, userns=True)
    done = runtime("run", "--bundle", str(path), "oci-userns")
    lines = [line.split() for line in done.stdout.splitlines()]
    assert lines[:3] == [["0", str(HOST_ID), str(SIZE)]] * 2 + [["0"]]
    assert lines[3] == ["refused"]  # the host's root-owned directory, though bound writable
    assert not (tmp_path / "host" / "written").exists()
    made = (path / "rootfs" / "made").stat()
    assert (made.st_uid, made.st_gid) == (HOST_ID, HOST_ID)  # container root, seen from the host


def test_without_the_user_namespace_the_same_write_succeeds(
        runtime: Runtime, tmp_path: Path, busybox_image: Path) -> None:
    """The control: the probe above is refused by the mapping, not by the mount."""
    path = bundle(tmp_path, busybox_image, PROBE, userns=False)
    done = runtime("run", "--bundle", str(path), "oci-userns-plain")
    assert done.stdout.splitlines()[-1] == "wrote"
    assert (tmp_path / "host" / "written").read_text() == "x\n"
    assert (path / "rootfs" / "made").stat().st_uid == 0


def test_several_ranges_map_each_id_by_its_own(runtime: Runtime, tmp_path: Path,
                                               busybox_image: Path) -> None:
    """podman's keep-id for the host's user 1000 (``--uidmap 0:200000:1000 --uidmap 1000:1000:1
    --uidmap 1001:201001:64535``), gids one range: the process, user 1000 inside, is the
    host's 1000 and writes that user's directory, its gid the range's 1000th."""
    path = bundle(tmp_path, busybox_image, "cat /proc/self/uid_map; id -u; id -g; "
                  "echo x > /host/written && echo wrote || echo refused", userns=True)
    document = json.loads((path / "config.json").read_text())
    document["linux"]["uidMappings"] = [
        {"containerID": 0, "hostID": HOST_ID, "size": 1000},
        {"containerID": 1000, "hostID": 1000, "size": 1},
        {"containerID": 1001, "hostID": HOST_ID + 1001, "size": SIZE - 1001}]
    document["process"]["user"] = {"uid": 1000, "gid": 1000}
    write_config(path, document)
    os.chown(tmp_path / "host", 1000, 1000)
    done = runtime("run", "--bundle", str(path), "oci-userns-ranges")
    assert done.stdout.splitlines() == [
        f"{0:>10} {HOST_ID:>10} {1000:>10}", f"{1000:>10} {1000:>10} {1:>10}",
        f"{1001:>10} {HOST_ID + 1001:>10} {SIZE - 1001:>10}", "1000", "1000", "wrote"]
    written = (tmp_path / "host" / "written").stat()
    assert (written.st_uid, written.st_gid) == (1000, HOST_ID + 1000)


def test_an_idmapped_mount_shows_the_hosts_files_as_container_roots(
        runtime: Runtime, tmp_path: Path, busybox_image: Path) -> None:
    """As a user-namespaced Kubernetes pod's volumes are mounted (the ``idmap`` option: through
    the container's maps): the host directory owned by the host's root, which the test above
    could not write, is container root's there, and what it writes is the host root's on
    disk."""
    done = runtime("run", "--bundle", str(_idmapped(tmp_path, busybox_image, "idmap")),
                   "oci-userns-idmap")
    assert done.stdout.splitlines() == ["0 0", "wrote", "0 0"]
    written = (tmp_path / "host" / "written").stat()
    assert (written.st_uid, written.st_gid) == (0, 0)


def test_an_idmapped_mount_with_maps_of_its_own(runtime: Runtime, tmp_path: Path,
                                                busybox_image: Path) -> None:
    """The mount's uidMappings/gidMappings, not the container's: the host's root is the
    container's 1000 there, and container root, which has no id through those maps, cannot
    create a file in it."""
    own = [{"containerID": 0, "hostID": HOST_ID + 1000, "size": 1}]
    done = runtime("run", "--bundle", str(_idmapped(tmp_path, busybox_image, own)),
                   "oci-userns-idmap-own", check=False)
    assert done.stdout.splitlines()[:2] == ["1000 1000", "refused"]
    assert not (tmp_path / "host" / "written").exists()


def _idmapped(tmp_path: Path, busybox: Path, how: str | list[dict[str, int]]) -> Path:
    """The probe's bundle with its /host bind idmapped: by the option ``how``, or by maps."""
    path = bundle(tmp_path, busybox, "stat -c '%u %g' /host; echo x > /host/written "
                  "&& echo wrote || echo refused; stat -c '%u %g' /host/written", userns=True)
    document = json.loads((path / "config.json").read_text())
    host_mount = document["mounts"][-1]
    if isinstance(how, str):
        host_mount["options"].append(how)
    else:
        host_mount["uidMappings"] = host_mount["gidMappings"] = how
    write_config(path, document)
    return path


def test_exec_joins_the_user_namespace(runtime: Runtime, tmp_path: Path,
                                       busybox_image: Path) -> None:
    path = bundle(tmp_path, busybox_image, "exec sleep 1000", userns=True)
    pid_file = tmp_path / "pid"
    runtime("run", "--detach", "--bundle", str(path), "--pid-file", str(pid_file),
            "oci-userns-exec")
    status = Path(f"/proc/{pid_file.read_text()}/status").read_text()
    assert f"Uid:\t{HOST_ID}\t{HOST_ID}\t{HOST_ID}\t{HOST_ID}" in status  # PID 1, from the host
    seen = runtime("exec", "oci-userns-exec", "/bin/sh", "-c", "id -u; cat /proc/self/uid_map")
    assert seen.stdout.split() == ["0", "0", str(HOST_ID), str(SIZE)]
    runtime("delete", "--force", "oci-userns-exec")
    eventually(lambda: not Path(f"/proc/{pid_file.read_text()}").exists(), "PID 1 gone")


def test_joining_a_namespace_by_path_with_a_new_user_namespace_is_refused(
        runtime: Runtime, tmp_path: Path, busybox_image: Path) -> None:
    path = bundle(tmp_path, busybox_image, "true", userns=True)
    document = json.loads((path / "config.json").read_text())
    for namespace in document["linux"]["namespaces"]:
        if namespace["type"] == "network":
            namespace["path"] = "/proc/self/ns/net"
    write_config(path, document)
    done = runtime("run", "--bundle", str(path), "oci-userns-join", check=False)
    assert done.returncode != 0
    assert "a new user namespace cannot be combined with joining existing namespaces (net)" \
        in messages(done)
    shutil.rmtree(path)


def _joining(tmp_path: Path, busybox: Path, pid: int, script: str,
             mapping: list[dict[str, int]] | None) -> Path:
    """A bundle that joins the user and network namespaces of ``pid`` by path, with
    ``mapping`` as its uidMappings and gidMappings (None: none)."""
    (tmp_path / "joiner").mkdir()
    path = bundle(tmp_path / "joiner", busybox, script, userns=True)
    document = json.loads((path / "config.json").read_text())
    for namespace in document["linux"]["namespaces"]:
        if kind := {"user": "user", "network": "net"}.get(namespace["type"]):
            namespace["path"] = f"/proc/{pid}/ns/{kind}"
    for key in ("uidMappings", "gidMappings"):
        document["linux"].pop(key)
        if mapping is not None:
            document["linux"][key] = mapping
    write_config(path, document)
    return path


@pytest.fixture
def sandbox(runtime: Runtime, tmp_path: Path, busybox_image: Path) -> Iterator[int]:
    """PID 1 of a container with a user namespace, standing in for a pod's sandbox."""
    path = bundle(tmp_path, busybox_image, "exec sleep 1000", userns=True)
    pid_file = tmp_path / "pid"
    runtime("run", "--detach", "--bundle", str(path), "--pid-file", str(pid_file),
            "oci-userns-pod")
    pid = int(pid_file.read_text())
    yield pid
    runtime("delete", "--force", "oci-userns-pod")
    eventually(lambda: not Path(f"/proc/{pid}").exists(), "the sandbox's PID 1 gone")


@pytest.mark.parametrize("mapping", [MAPPING, None], ids=["with-mappings", "without"])
def test_a_bundle_joins_another_containers_user_namespace_by_path(
        runtime: Runtime, tmp_path: Path, busybox_image: Path, sandbox: int,
        mapping: list[dict[str, int]] | None) -> None:
    """As containerd starts the containers of a user-namespaced pod: each joins the sandbox's
    user and network namespaces by path, with the same mappings or none."""
    probe = ("cat /proc/self/uid_map; id -u; readlink /proc/self/ns/user; "
             "readlink /proc/self/ns/net; touch /m")
    path = _joining(tmp_path, busybox_image, sandbox, probe, mapping)
    done = runtime("run", "--bundle", str(path), "oci-userns-joiner")
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["0", str(HOST_ID), str(SIZE)] and lines[1] == "0"
    assert lines[2:4] == [os.readlink(f"/proc/{sandbox}/ns/user"),
                          os.readlink(f"/proc/{sandbox}/ns/net")]
    made = (path / "rootfs" / "m").stat()
    assert (made.st_uid, made.st_gid) == (HOST_ID, HOST_ID)  # its root is the sandbox's


def test_mappings_other_than_the_joined_namespaces_are_refused(
        runtime: Runtime, tmp_path: Path, busybox_image: Path, sandbox: int) -> None:
    other = [{"containerID": 0, "hostID": HOST_ID + SIZE, "size": SIZE}]
    path = _joining(tmp_path, busybox_image, sandbox, "true", other)
    done = runtime("run", "--bundle", str(path), "oci-userns-other", check=False)
    assert done.returncode != 0
    theirs, ours = (f"uids 0:{base}:{SIZE}, gids 0:{base}:{SIZE}" for base in (HOST_ID + SIZE,
                                                                                HOST_ID))
    assert (f"uidMappings/gidMappings map {theirs}, but the user namespace joined "
            f"(/proc/{sandbox}/ns/user) maps {ours}") in messages(done)
