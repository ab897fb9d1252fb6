"""User namespaces (``namespaces.user = true``, ``ctrctl run --userns``), as root against the real
kernel: container root is root inside and an unprivileged range of host ids outside."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from supervisor.model.spec import ContainerSpec, NamespaceJoins, NetworkSpec
from supervisor.runtime import process, userns
from supervisor.runtime.cgroups import open_driver
from supervisor.runtime.container import Container, Options
from supervisor.runtime.exec import spawn_in
from supervisor.runtime.paths import Dirs
from tests.e2e.conftest import Daemon, Env

USERNS = ("--network", "none", "--userns")
# Stays up until SIGTERM; prints "ready" first (Env.start waits for it).
SERVE = "trap 'exit 0' TERM; echo ready; {}; while :; do sleep 0.1; done"


def _maps(text: str) -> list[list[str]]:
    return [line.split() for line in text.strip().splitlines()]


def _record(env: Env, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (env.state / "containers" / name / "state.json").read_text())
    return data


def _base(record: dict[str, Any]) -> int:
    """The first host id of the container's one range, from its state record."""
    maps = record["userns"]
    assert maps["uids"] == maps["gids"] and len(maps["uids"]) == 1 and maps["uids"][0][0] == 0
    base: int = maps["uids"][0][1]
    return base


def _host_ids(pid: int) -> tuple[list[str], list[str]]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text()
                  .splitlines())
    return fields["Uid"].split(), fields["Gid"].split()


@contextlib.contextmanager
def _running(env: Env, name: str, *flags: str, script: str = "true"
             ) -> Iterator[subprocess.Popen[str]]:
    proc = env.start(*flags, "--name", name, "--", "/bin/sh", "-c", SERVE.format(script))
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)


def test_pid_1_dies_with_a_killed_ctrctl_and_the_leftovers_are_torn_down(env: Env) -> None:
    proc = env.start(*USERNS, "--name", "orphan", "--", "/bin/sh", "-c", SERVE.format("true"))
    record = _record(env, "orphan")
    proc.kill()  # no teardown: the shim dies with ctrctl, PID 1 with the shim
    proc.wait(timeout=10)
    deadline = time.monotonic() + 5
    while process.same_process(record["pid"], process.start_time(record["pid"])):
        assert time.monotonic() < deadline, "PID 1 outlived its shim"
        time.sleep(0.05)
    lease = env.state / "userns" / "ranges" / str(_base(record))
    assert lease.exists()  # the state record still holds it
    spec = ContainerSpec(name="orphan", image="busybox")
    Container.adopt(spec, Dirs(env.state, env.data), open_driver("auto")).teardown()
    assert not lease.exists()


def _snapshot(tree: Path) -> dict[str, tuple[int, int, int, int]]:
    """Owner, mode and mtime of everything under ``tree``: what a chown or a write would change."""
    found = {}
    for path in [tree, *tree.rglob("*")]:
        st = path.lstat()
        found[str(path.relative_to(tree))] = (st.st_uid, st.st_gid, st.st_mode, st.st_mtime_ns)
    return found


def test_root_inside_is_an_unprivileged_range_of_host_ids(env: Env) -> None:
    script = "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map"
    with _running(env, "u1", *USERNS, script=script) as proc:
        assert proc.stdout is not None
        lines = [proc.stdout.readline().strip() for _ in range(4)]
        record = _record(env, "u1")
        base = _base(record)
        assert record["userns"]["uids"][0][2] == 65536
        assert base >= 0x80000 and base % 65536 == 0  # far from the host's own users
        assert lines[:2] == ["0", "0"]
        assert _maps("\n".join(lines[2:])) == [["0", str(base), "65536"]] * 2
        uids, gids = _host_ids(record["pid"])  # the host sees PID 1 as BASE, not as root
        assert uids == [str(base)] * 4 and gids == [str(base)] * 4
        assert (env.state / "userns" / "ranges" / str(base)).read_text() == "u1"
    assert not (env.state / "userns" / "ranges" / str(base)).exists()  # freed at teardown


def test_two_running_containers_never_share_a_range(env: Env) -> None:
    with _running(env, "ua", *USERNS), _running(env, "ub", *USERNS):
        bases = {_base(_record(env, name)) for name in ("ua", "ub")}
        leases = {p.read_text() for p in (env.state / "userns" / "ranges").iterdir()}
    assert len(bases) == 2 and leases == {"ua", "ub"}


def test_pid_namespace_and_the_rest_are_owned_by_the_user_namespace(env: Env) -> None:
    with _running(env, "u2", "--userns"):
        pid = _record(env, "u2")["pid"]
        theirs = {kind: os.readlink(f"/proc/{pid}/ns/{kind}") for kind in
                  ("user", "pid", "net", "mnt", "uts", "ipc", "cgroup")}
        ours = {kind: os.readlink(f"/proc/self/ns/{kind}") for kind in theirs}
    assert all(theirs[kind] != ours[kind] for kind in theirs)
    # Only the owner of a pid namespace may mount its /proc: that the container has one (every
    # ``ps`` test) shows it; a new cgroup namespace shows the container's cgroup as its root.
    ps = env.run("ps", "-o", "pid,user,args", flags=USERNS, check=True).stdout.splitlines()
    assert ps[1].split() == ["1", "root", "ps", "-o", "pid,user,args"]
    cgroups = env.run("cat", "/proc/self/cgroup", flags=USERNS, check=True).stdout.split()
    assert cgroups and all(line.endswith(":/") for line in cgroups)


def test_container_root_owns_its_writes_and_the_image_is_untouched(env: Env,
                                                                   tmp_path: Path) -> None:
    image = (env.data / "images" / "busybox").resolve()
    archive = tmp_path / "extra.tar"
    content = tmp_path / "extra"
    (content / "share").mkdir(parents=True)
    (content / "share" / "note").write_text("from the tarball\n")
    with tarfile.open(archive, "w") as tar:
        tar.add(content, arcname=".")
    before = _snapshot(image)
    script = ("echo hi > /etc/x && mkdir /root/d && touch /root/d/f && echo t > /opt/new && "
              "ls -ln /etc/x /root/d/f /opt/new /etc/passwd /opt/share/note | "
              "while read -r _ _ u g _; do echo $u $g; done; cat /proc/self/uid_map")
    out = env.ctrctl("run", *USERNS, "--name", "keep", "-v", f"{archive}:/opt", "--",
                     "/bin/sh", "-c", script, check=True).stdout.splitlines()
    assert out[:5] == ["0 0"] * 5  # written files and the image's: root's, inside
    base = int(out[5].split()[1])
    upper = env.data / "containers" / "keep" / "rootfs" / "upper"
    assert (upper / "etc" / "x").stat().st_uid == base  # the host sees the range
    assert (upper / "root" / "d" / "f").stat().st_gid == base
    assert _snapshot(image) == before  # neither chowned nor written
    assert not (image / "etc" / "x").exists()
    cache = next((env.data / "cache").iterdir())
    assert {p.stat().st_uid for p in [cache, *cache.rglob("*")]} == {0}
    env.ctrctl("run", *USERNS, "--rm", "--name", "keep", "--", "/bin/true", check=True)


def test_container_root_has_no_host_powers_even_privileged(env: Env, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "key").write_text("host root only\n")
    (secret / "key").chmod(0o600)
    script = ("mknod /tmp/disk b 8 0 2>/dev/null && echo made-a-device; "
              "echo 1 > /proc/sys/kernel/sysrq 2>/dev/null && echo wrote-a-sysctl; "
              "cat /host/key 2>/dev/null && echo read-a-host-secret; "
              "grep CapEff /proc/self/status")
    out = env.run("/bin/sh", "-c", script, flags=(*USERNS, "--privileged", "--mount",
                                                  f"{secret}:/host"), check=True).stdout
    assert int(out.split()[-1], 16) & (1 << 21)  # CAP_SYS_ADMIN, in its own namespace only
    assert "made-a-device" not in out and "wrote-a-sysctl" not in out
    assert "read-a-host-secret" not in out and "host root only" not in out


def test_its_own_mounts_and_hostname(env: Env) -> None:
    script = ("mkdir -p /mnt/t /mnt/p && mount -t tmpfs t /mnt/t && echo x > /mnt/t/f && "
              "mount -t proc p /mnt/p && test -e /mnt/p/self/status && hostname other && "
              "hostname && mount | grep -c ' /mnt/'")
    out = env.run("/bin/sh", "-c", script, flags=(*USERNS, "--privileged"), check=True).stdout
    assert out.split() == ["other", "2"]
    standard = env.run("/bin/sh", "-c", "mount | cut -d' ' -f3,5 | sort; hostname",
                       flags=(*USERNS, "--name", "uhost"), check=True).stdout
    assert {"/proc proc", "/sys sysfs", "/dev tmpfs", "/dev/pts devpts", "/tmp tmpfs",
            "/ overlay"} <= set(standard.splitlines())
    assert standard.split()[-1] == "uhost"


def test_dev_nodes_work(env: Env) -> None:
    out = env.run("/bin/sh", "-c", "head -c 3 /dev/zero | od -An -tx1; echo x > /dev/null; "
                  "head -c 8 /dev/urandom | wc -c", flags=USERNS, check=True).stdout
    assert out.split() == ["00", "00", "00", "8"]


def test_veth_network_gets_its_address(env: Env) -> None:
    out = env.run("/bin/sh", "-c", "ip -4 -o addr show eth0; ip route",
                  flags=("--userns",), check=True).stdout
    assert "inet 10.214." in out and "default via 10.214.0.1" in out


def test_host_network_gets_the_hosts_sys_read_only(env: Env) -> None:
    """The kernel lets a user namespace mount sysfs only for a network namespace it owns."""
    out = env.run("/bin/sh", "-c", "test -e /sys/class/net/lo && echo lo; "
                  "touch /sys/kernel/x 2>/dev/null || echo sys-ro",
                  flags=("--userns", "--network", "host"), check=True).stdout.split()
    assert out == ["lo", "sys-ro"]


def test_cgroup_limits_apply(env: Env) -> None:
    forks = "for i in 1 2 3 4 5 6 7 8; do sleep 1 & done; wait; echo all-forked"
    limited = env.run("/bin/sh", "-c", forks, flags=(*USERNS, "--pids-max", "4"))
    assert "can't fork" in limited.stderr and "all-forked" not in limited.stdout


def test_read_only_root_binds_and_tmpfs(env: Env, tmp_path: Path) -> None:
    www = tmp_path / "www"
    www.mkdir()
    (www / "index.html").write_text("hello\n")
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "f").write_text("host\n")
    script = ("cat /www/index.html; touch /x 2>/dev/null || echo root-ro; "
              "touch /www/x 2>/dev/null || echo www-ro; echo s > /scratch/f && echo tmpfs-rw; "
              "touch /shared/new 2>/dev/null || echo shared-not-ours; "
              "ls -ln /shared/f | while read -r _ _ u g _; do echo $u $g; done")
    out = env.run("/bin/sh", "-c", script, flags=(
        *USERNS, "--read-only", "--mount", f"{www}:/www:ro", "--mount", f"{shared}:/shared",
        "--tmpfs", "/scratch:1M"), check=True).stdout.splitlines()
    # A bind keeps the host's owners (as in nspawn and podman): host root is nobody inside.
    assert out == ["hello", "root-ro", "www-ro", "tmpfs-rw", "shared-not-ours", "65534 65534"]
    assert sorted(p.name for p in www.iterdir()) == ["index.html"]


def test_filesystem_image(env: Env, busybox_image: Path, tmp_path: Path) -> None:
    image = tmp_path / "busybox.img"
    subprocess.run(["mkfs.ext4", "-q", "-d", str(busybox_image), str(image), "16M"], check=True)
    out = env.run("/bin/sh", "-c", "echo w > /etc/new; cat /etc/new; ls -ln /etc/group",
                  flags=(*USERNS, "--image", str(image)), check=True).stdout.split()
    assert out[:4] == ["w", "-rw-r--r--", "1", "0"]  # the image's root files: root's inside


def test_layers_on_a_file_system_without_idmapped_mounts_fail_clearly(
        env: Env, busybox_image: Path, tmp_path: Path) -> None:
    ramfs = tmp_path / "ramfs"
    ramfs.mkdir()
    subprocess.run(["mount", "-t", "ramfs", "ctr-test-ramfs", str(ramfs)], check=True)
    try:
        subprocess.run(["cp", "-a", str(busybox_image), str(ramfs / "root")], check=True)
        result = env.run("/bin/true", flags=(*USERNS, "--rootfs", str(ramfs / "root")))
        assert result.returncode == 125
        assert "does not support idmapped mounts" in result.stderr
        assert str(ramfs / "root") in result.stderr
        assert env.run("/bin/true", flags=("--network", "none", "--rootfs",
                                           str(ramfs / "root"))).returncode == 0
    finally:
        subprocess.run(["umount", str(ramfs)], check=True)
    assert not list((env.state / "userns" / "ranges").iterdir())  # the failed start's freed


def test_a_kept_layer_keeps_its_range_or_is_shifted_to_a_new_one(env: Env) -> None:
    env.ctrctl("run", "--network", "none", "--name", "k", "--", "/bin/sh", "-c",
               "echo one > /root/f", check=True)  # no user namespace: host-root-owned files
    out = env.ctrctl("run", *USERNS, "--name", "k", "--", "/bin/sh", "-c",
                     "echo two >> /root/f && cat /root/f && ls -ln /root/f && "
                     "cat /proc/self/uid_map", check=True).stdout.split()
    assert out[:2] == ["one", "two"] and out[4:6] == ["0", "0"]
    first = out[-2]
    again = env.ctrctl("run", *USERNS, "--rm", "--name", "k", "--", "/bin/cat",
                       "/proc/self/uid_map", check=True).stdout.split()
    assert again[1] == first  # the range its layer is owned by, when free


def test_exec_joins_the_user_namespace(env: Env) -> None:
    spec = ContainerSpec(name="ux", image="busybox", command=("/bin/sleep", "60"),
                         network=NetworkSpec(mode="none"), namespaces=NamespaceJoins(user=True))
    container = Container(spec, Dirs(env.state, env.data), open_driver("auto"),
                          Options(remove=True))
    container.start()
    try:
        out_r, out_w = os.pipe()
        pid = spawn_in(container.pid or 0, ["/bin/sh", "-c", "id -u; cat /proc/self/uid_map; "
                                            "echo e > /root/e && ls -ln /root/e; sleep 1"],
                       confinement=container.confinement(), stdio=(0, out_w, out_w))
        os.close(out_w)
        uids, _ = _host_ids(pid)
        output = process.read_all(out_r).decode().split()
        os.close(out_r)
        _, status = os.waitpid(pid, 0)
    finally:
        container.teardown()
        container.wait()
    assert container.id_map is not None
    base = str(container.id_map.root[0])
    assert process.exit_code(status) == 0
    assert uids == [base] * 4
    assert output[:4] == ["0", "0", base, "65536"] and output[6:8] == ["0", "0"]


USERNS_SERVER = """
[container]
image = "busybox"
command = ["/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done"]
[namespaces]
user = true
"""


def test_definition_with_user_namespace_under_ctrd(ctrd: Daemon) -> None:
    ctrd.define("web", USERNS_SERVER)
    ctrd.start()
    ctrd.ctl("start", "web")
    status = ctrd.status("web")
    base = _base(_record(ctrd.env, "web"))
    assert _host_ids(status["pid"])[0] == [str(base)] * 4
    assert status["ip"].startswith("10.214.")  # the veth is configured as without one
    inside = ctrd.ctl("exec", "web", "--", "/bin/sh", "-c", "id -u; cat /proc/self/uid_map")
    assert _maps(inside.stdout) == [["0"], ["0", str(base), "65536"]]
    ctrd.ctl("stop", "web")
    assert not (ctrd.env.state / "userns" / "ranges" / str(base)).exists()


def test_joining_another_containers_namespaces_is_refused(ctrd: Daemon) -> None:
    ctrd.define("db", USERNS_SERVER.replace("user = true", "user = false"))
    ctrd.define("app", USERNS_SERVER + 'ipc = "container:db"\n')
    ctrd.start()
    ctrd.ctl("start", "db")
    result = ctrd.ctl("start", "app", check=False)
    assert result.returncode != 0
    assert "app.toml: namespaces.user: cannot be combined with joining the namespaces of db" \
        in result.stderr


# -- range leases ---------------------------------------------------------------------------------


@pytest.fixture
def dirs(tmp_path: Path) -> Dirs:
    return Dirs(tmp_path / "state", tmp_path / "data")


def _exists(dirs: Dirs, *names: str) -> None:
    for name in names:
        dirs.container_state(name).mkdir(parents=True)


def test_leases_are_exclusive_and_freed(dirs: Dirs) -> None:
    _exists(dirs, "a", "b", "c")
    first = userns.allocate(dirs, "a")
    second = userns.allocate(dirs, "b", preferred=first.root[0])  # taken: another one
    assert second.root[0] != first.root[0]
    userns.release(dirs.state, first, "a")
    assert userns.allocate(dirs, "c", preferred=first.root[0]) == first


def test_a_lease_of_a_container_that_is_gone_is_stale(dirs: Dirs) -> None:
    _exists(dirs, "a", "b")
    first = userns.allocate(dirs, "a")
    dirs.container_state("a").rmdir()  # as after a crash and a clean-up of its state
    assert userns.allocate(dirs, "b", preferred=first.root[0]) == first


def test_ranges_overlapping_subordinate_ids_are_skipped(dirs: Dirs, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    _exists(dirs, "a")
    subuid = tmp_path / "subuid"
    subuid.write_text(f"alice:{0x80000 + 100}:65536\n")
    monkeypatch.setattr(userns, "_SUBID_FILES", (str(subuid),))
    chosen = userns.allocate(dirs, "a", preferred=0x80000)
    assert chosen.root[0] not in (0x80000, 0x90000)  # both overlap alice's range
