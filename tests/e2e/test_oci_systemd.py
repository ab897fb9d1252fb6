"""ctr-runtime --systemd-cgroup, as podman's and containerd's systemd cgroup managers (and so a
Kubernetes node with the systemd cgroup driver) call it: the container is the transient scope its
``cgroupsPath`` of ``slice:prefix:name`` names, made over D-Bus, limits as the unit's properties,
gone with ``delete``; and podman with its systemd cgroup manager. In the real systemd of
tests/systemd_harness.py."""

from __future__ import annotations

import json
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.oci_fixtures import CTR_RUNTIME, IMAGE, config, make_bundle
from tests.systemd_harness import BootedSystemd, booted_systemd

ROOT = "/run/ctr-runtime-test"  # ctr-runtime's --root inside the booted systemd
MIB = 1 << 20
POD = "kubepods-burstable-pod1b2c3d4e_5f6a_7b8c_9d0e_1f2a3b4c5d6e.slice"  # as the kubelet names it


@pytest.fixture(scope="module")
def machine() -> Iterator[BootedSystemd]:
    with booted_systemd() as booted:
        yield booted


def runtime(machine: BootedSystemd, *args: str, check: bool = True) -> str:
    return machine.run([str(CTR_RUNTIME), "--systemd-cgroup", "--root", ROOT, *args],
                       check=check).stdout


def show(machine: BootedSystemd, unit: str, prop: str) -> str:
    return machine.run(["systemctl", "show", "-p", prop, "--value", unit]).stdout.strip()


def listed(machine: BootedSystemd, unit: str) -> bool:
    out = machine.run(["systemctl", "list-units", "--all", "--no-legend", unit]).stdout
    return unit in out


@pytest.mark.parametrize(("cgroups_path", "unit", "group"), [
    ("system.slice:ctrtest:one", "ctrtest-one.scope", "/system.slice/ctrtest-one.scope"),
    # a Kubernetes pod's slice (longer than a container's name may be): each dash a level down
    (f"{POD}:cri-containerd:two", "cri-containerd-two.scope",
     f"/kubepods.slice/kubepods-burstable.slice/{POD}/cri-containerd-two.scope"),
])
def test_the_container_is_the_scope_its_cgroups_path_names(
        machine: BootedSystemd, busybox_image: Path, cgroups_path: str, unit: str,
        group: str) -> None:
    cid = unit.removesuffix(".scope").rsplit("-", 1)[-1]
    document = config(["/bin/sleep", "600"], cgroupsPath=cgroups_path,
                      resources={"memory": {"limit": 64 * MIB}, "pids": {"limit": 32}})
    make_bundle(machine.path(f"/srv/{cid}"), busybox_image, document)
    try:
        runtime(machine, "create", "--bundle", f"/srv/{cid}", cid)
        assert show(machine, unit, "ActiveState") == "active"
        assert show(machine, unit, "ControlGroup") == group
        assert show(machine, unit, "MemoryMax") == str(64 * MIB) or \
            show(machine, unit, "MemoryLimit") == str(64 * MIB)
        assert show(machine, unit, "TasksMax") == "32"
        state = json.loads(runtime(machine, "state", cid))
        assert state["status"] == "created"
        memberships = machine.run(["cat", f"/proc/{state['pid']}/cgroup"]).stdout
        assert f":memory:{group}\n" in memberships  # PID 1 is in it
        assert f":pids:{group}\n" in memberships
        runtime(machine, "start", cid)
        assert json.loads(runtime(machine, "state", cid))["status"] == "running"
        runtime(machine, "kill", cid, "KILL")
        runtime(machine, "delete", "--force", cid)
        assert not listed(machine, unit)
        # where systemd does not manage the controller (the v1 freezer) the levels were ctr's
        top = group.split("/")[1]
        assert machine.run(["ls", "/sys/fs/cgroup/freezer"]).stdout.split().count(top) == 0
    finally:
        runtime(machine, "delete", "--force", cid, check=False)


def test_podman_with_its_systemd_cgroup_manager(machine: BootedSystemd,
                                                busybox_image: Path) -> None:
    """podman's default on a systemd host: each container is the scope libpod-ID.scope in
    machine.slice, made by ctr-runtime (podman passes --systemd-cgroup), its limits the unit's."""
    with tarfile.open(machine.path("/srv/busybox.tar"), "w") as archive:
        archive.add(busybox_image, arcname=".")
    podman = ["podman", "--root", "/srv/podman/storage", "--runroot", "/srv/podman/run",
              "--tmpdir", "/srv/podman/tmp", "--storage-driver", "vfs", "--events-backend",
              "file", "--cgroup-manager", "systemd", "--runtime", str(CTR_RUNTIME)]
    run = [*podman, "run", "--network", "none", "--ulimit", "nofile=1024:1024", "--ulimit",
           "nproc=1024:1024", "--memory", "64m"]
    try:
        machine.run([*podman, "import", "/srv/busybox.tar", IMAGE], timeout=120)
        once = machine.run([*run, "--rm", IMAGE, "cat", "/proc/self/cgroup"], timeout=120)
        assert re.search(r"^\d+:memory:/machine\.slice/libpod-[0-9a-f]{64}\.scope$", once.stdout,
                         re.M), once.stdout
        cid = machine.run([*run, "-d", IMAGE, "sleep", "600"], timeout=120).stdout.strip()
        unit = f"libpod-{cid}.scope"
        assert show(machine, unit, "ActiveState") == "active"
        assert show(machine, unit, "ControlGroup") == f"/machine.slice/{unit}"
        assert show(machine, unit, "MemoryMax") == str(64 * MIB)
        machine.run([*podman, "rm", "-f", "-t", "0", cid], timeout=120)
        assert not listed(machine, unit)
    finally:
        machine.run([*podman, "rm", "-a", "-f", "-t", "0"], check=False, timeout=120)
