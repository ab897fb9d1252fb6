"""podman from Debian's packages drives ctr-runtime (``--runtime``) as it drives runc: an image
made with ``podman import`` of the busybox tree, in a store of the tests' own, each container
under a cgroup parent of the tests' (which the leak check watches) and without a network."""

from __future__ import annotations

import errno
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.oci_fixtures import IMAGE, Podman, eventually, podman_with_busybox
from tests.oci_fixtures import Runtime as OciRuntime

PARENT = "ctr-oci-podman"  # cgroupsPath /PARENT/libpod-ID
# The sandbox cannot raise rlimits to podman's defaults (no CAP_SYS_RESOURCE).
RUN = ("--network", "none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
       "--cgroup-parent", f"/{PARENT}")
DEFAULT_ROOT = Path("/run/ctr-runtime")  # podman passes no --root to a runtime


def _remove_parent(timeout: float = 10) -> None:
    """podman's own cgroup for conmon under our parent, and the parent (once empty). A conmon
    of an exec session may still be on its way out after ``podman rm -f`` returned (seen once in
    CI): its cgroup is busy (EBUSY) until then."""
    deadline = time.monotonic() + timeout
    for hierarchy in Path("/sys/fs/cgroup").iterdir():
        for path in (hierarchy / PARENT / "conmon", hierarchy / PARENT):
            while True:
                try:
                    path.rmdir()
                except FileNotFoundError:
                    break
                except OSError as exc:
                    if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                        break  # another test's, or the leak check says what is left
                    time.sleep(0.05)
                else:
                    break


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory, busybox_image: Path) -> Iterator[Podman]:
    found = podman_with_busybox(tmp_path_factory.mktemp("oci-podman"), busybox_image, RUN)
    yield found
    found("rm", "-a", "-f", "-t", "0", check=False)
    _remove_parent()


@pytest.fixture
def cleanup(podman: Podman) -> Iterator[None]:
    yield
    podman("rm", "-a", "-f", "-t", "0", check=False)
    _remove_parent()


def cgroup_of(cid: str, controller: str) -> Path:
    return Path("/sys/fs/cgroup") / controller / PARENT / f"libpod-{cid}"


def test_exit_codes_and_output(podman: Podman, cleanup: None) -> None:
    done = podman.run("--rm", IMAGE, "sh", "-c", "echo out; echo err >&2; exit 3", check=False)
    assert (done.returncode, done.stdout) == (3, "out\n")
    assert "err" in done.stderr
    assert podman.run("--rm", IMAGE, "nope", check=False).returncode == 127
    assert podman.run("--rm", IMAGE, "/bin/nope", check=False).returncode == 127


def test_a_terminal(podman: Podman, cleanup: None) -> None:
    done = podman.run("--rm", "-t", IMAGE, "sh", "-c", "tty; test -t 1 && echo yes; exit 4",
                      check=False)
    assert done.returncode == 4
    assert done.stdout.replace("\r", "").splitlines() == ["/dev/pts/0", "yes"]


def test_exec(podman: Podman, cleanup: None) -> None:
    podman.run("-d", "--name", "oci-pod-exec", IMAGE, "sleep", "1000")
    assert podman("exec", "oci-pod-exec", "sh", "-c", "echo $((40 + 2))").stdout == "42\n"
    assert podman("exec", "oci-pod-exec", "sh", "-c", "exit 5", check=False).returncode == 5
    with_tty = podman("exec", "-t", "oci-pod-exec", "tty").stdout.strip()
    assert with_tty.startswith("/dev/pts/")
    assert podman("exec", "oci-pod-exec", "cat", "/proc/1/cmdline").stdout == "sleep\x001000\x00"


def test_a_user_namespace_from_uidmap(podman: Podman, cleanup: None) -> None:
    """podman leases the range and gives the image's copy its owners; ctr-runtime maps it."""
    done = podman.run("--rm", "--uidmap", "0:300000:65536", "--gidmap", "0:300000:65536",
                      IMAGE, "sh", "-c", "cat /proc/self/uid_map; id -u; touch /made; "
                      "stat -c %u /made")
    assert done.stdout.split() == ["0", "300000", "65536", "0", "0"]
    podman.run("-d", "--name", "oci-podman-userns", "--uidmap", "0:300000:65536", "--gidmap",
               "0:300000:65536", IMAGE, "sleep", "1000")
    pid = podman("inspect", "--format", "{{.State.Pid}}", "oci-podman-userns").stdout.strip()
    assert "Uid:\t300000\t" in Path(f"/proc/{pid}/status").read_text()  # root, from the host
    seen = podman("exec", "oci-podman-userns", "sh", "-c", "id -u; cat /proc/self/uid_map")
    assert seen.stdout.split() == ["0", "0", "300000", "65536"]


def test_a_user_namespace_of_several_ranges(podman: Podman, cleanup: None,
                                            tmp_path: Path) -> None:
    """podman's keep-id form for the host's user 1000: that uid is the same inside and out, and
    writes a host directory of that user bound in; the uids around it and the gids from the
    range podman leased."""
    host = tmp_path / "host"
    host.mkdir(mode=0o755)
    os.chown(host, 1000, 1000)
    done = podman.run("--rm", "--uidmap", "0:300000:1000", "--uidmap", "1000:1000:1",
                      "--uidmap", "1001:301001:64535", "--gidmap", "0:300000:65536",
                      "--user", "1000:1000", "-v", f"{host}:/host", IMAGE, "sh", "-c",
                      "wc -l < /proc/self/uid_map; id -u; echo x > /host/written")
    assert done.stdout.split() == ["3", "1000"]
    written = (host / "written").stat()
    assert (written.st_uid, written.st_gid) == (1000, 301000)


def test_a_user_with_an_added_capability(podman: Podman, cleanup: None) -> None:
    """podman gives a non-root user its added capabilities in the ambient set as well."""
    probe = ("sh", "-c", "id -u; grep CapEff /proc/self/status")
    added = podman.run("--rm", "--user", "1000", "--cap-add", "NET_BIND_SERVICE", IMAGE, *probe)
    assert added.stdout.split() == ["1000", "CapEff:", "0000000000000400"]
    plain = podman.run("--rm", "--user", "1000", IMAGE, *probe)
    assert plain.stdout.split() == ["1000", "CapEff:", "0000000000000000"]


def test_stop_signals_then_kills(podman: Podman, cleanup: None) -> None:
    podman.run("-d", "--name", "oci-pod-trap", IMAGE, "sh", "-c",
               "trap 'exit 0' TERM; while :; do sleep 0.1; done")
    podman("stop", "-t", "20", "oci-pod-trap")
    assert podman("inspect", "--format", "{{.State.ExitCode}}", "oci-pod-trap").stdout \
        .strip() == "0"  # it handled the SIGTERM
    podman.run("-d", "--name", "oci-pod-deaf", IMAGE, "sleep", "1000")  # PID 1: ignores TERM
    stopped = podman("stop", "-t", "1", "oci-pod-deaf")
    assert "resorting to SIGKILL" in stopped.stderr
    assert podman("inspect", "--format", "{{.State.ExitCode}}", "oci-pod-deaf").stdout \
        .strip() == "137"


def test_kill(podman: Podman, cleanup: None) -> None:
    podman.run("-d", "--name", "oci-pod-kill", IMAGE, "sh", "-c",
               "trap 'exit 9' USR1; while :; do sleep 0.1; done")
    podman("kill", "-s", "USR1", "oci-pod-kill")
    eventually(lambda: podman.status("oci-pod-kill") == "exited", "USR1 ended it")
    assert podman("inspect", "--format", "{{.State.ExitCode}}", "oci-pod-kill").stdout \
        .strip() == "9"
    podman.run("-d", "--name", "oci-pod-kill9", IMAGE, "sleep", "1000")
    podman("kill", "oci-pod-kill9")
    eventually(lambda: podman.status("oci-pod-kill9") == "exited", "SIGKILL ended it")


def test_pause_unpause_and_the_states_of_ps(podman: Podman, cleanup: None) -> None:
    podman("create", "--name", "oci-pod-states", *RUN, IMAGE, "sleep", "1000")
    assert podman.status("oci-pod-states") == "created"
    podman("start", "oci-pod-states")
    assert podman.status("oci-pod-states") == "running"
    podman("pause", "oci-pod-states")
    assert podman.status("oci-pod-states") == "paused"
    cid = podman.container_id("oci-pod-states")
    assert Path(cgroup_of(cid, "freezer") / "freezer.state").read_text().strip() == "FROZEN"
    podman("unpause", "oci-pod-states")
    assert podman.status("oci-pod-states") == "running"
    podman("kill", "oci-pod-states")
    eventually(lambda: podman.status("oci-pod-states") == "exited", "it exited")


def test_limits_are_in_the_cgroup(podman: Podman, cleanup: None) -> None:
    podman.run("-d", "--name", "oci-pod-limits", "--memory", "64m", "--cpus", "0.5",
               "--pids-limit", "50", IMAGE, "sleep", "1000")
    cid = podman.container_id("oci-pod-limits")
    assert (cgroup_of(cid, "memory") / "memory.limit_in_bytes").read_text() == f"{64 << 20}\n"
    assert (cgroup_of(cid, "memory") / "memory.memsw.limit_in_bytes").read_text() == \
        f"{128 << 20}\n"  # podman's swap default: as much again
    assert (cgroup_of(cid, "cpu") / "cpu.cfs_quota_us").read_text() == "50000\n"
    assert (cgroup_of(cid, "pids") / "pids.max").read_text() == "50\n"
    inside = podman("exec", "oci-pod-limits", "cat", "/sys/fs/cgroup/pids/pids.max").stdout
    assert inside == "50\n"  # the container's own cgroup, seen from inside


def test_rm_force_leaves_nothing(podman: Podman, cleanup: None) -> None:
    podman.run("-d", "--name", "oci-pod-rm", IMAGE, "sleep", "1000")
    podman("exec", "-d", "oci-pod-rm", "sleep", "1000")
    cid = podman.container_id("oci-pod-rm")
    pids = json.loads(OciRuntime(DEFAULT_ROOT)("ps", "--format", "json", cid).stdout)
    assert len(pids) == 2
    podman("rm", "-f", "-t", "0", "oci-pod-rm")
    assert not (DEFAULT_ROOT / cid).exists()
    assert not any(cgroup_of(cid, c).exists() for c in ("memory", "pids", "freezer", "cpu"))
    assert not [pid for pid in pids if Path(f"/proc/{pid}/stat").exists()]
