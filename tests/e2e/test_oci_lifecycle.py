"""ctr-runtime's lifecycle against the runtime spec: create leaves the process waiting, start lets
it run, the states as the spec names them, and every operation in a state that does not allow it
refused with the error (and nothing changed)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_limits import whole_disk
from tests.oci_fixtures import (
    Runtime,
    config,
    eventually,
    make_bundle,
    messages,
    runtime_at,
    stop_process,
)

Bundle = Callable[..., Path]
LOOP = ["/bin/sh", "-c", "trap 'exit 3' TERM; echo ran > /ran; while :; do sleep 0.1; done"]


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    with runtime_at(tmp_path / "root") as found:
        yield found


@pytest.fixture
def bundle(tmp_path: Path, busybox_image: Path) -> Bundle:
    """A bundle of the busybox tree running ``args`` (or a whole config), members replaced."""
    def make(args: list[str] | dict[str, Any], name: str = "bundle", **members: Any) -> Path:
        document = config(args) if isinstance(args, list) else args
        document.update(members)
        return make_bundle(tmp_path / name, busybox_image, document)
    return make


def cgroup_dirs(name: str) -> list[Path]:
    return [p for p in Path("/sys/fs/cgroup").glob(f"*/ctr-runtime/{name}") if p.is_dir()]


def test_create_leaves_the_process_waiting_and_start_lets_it_run(
        runtime: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    path = bundle(LOOP, annotations={"org.example.test": "lifecycle"})
    pid_file = tmp_path / "pid"
    runtime("create", "--bundle", str(path), "--pid-file", str(pid_file), "oci-life-wait")
    state = runtime.state("oci-life-wait")
    assert state["status"] == "created"
    assert state["pid"] == int(pid_file.read_text()) > 0
    assert (state["ociVersion"], state["id"], state["bundle"]) == (
        "1.2.0", "oci-life-wait", str(path))
    assert state["annotations"] == {"org.example.test": "lifecycle"}
    assert cgroup_dirs("oci-life-wait"), "create makes the cgroup"
    time.sleep(0.2)
    assert not (path / "rootfs" / "ran").exists(), "the process must not run before start"
    runtime("start", "oci-life-wait")
    assert runtime.status("oci-life-wait") == "running"
    eventually(lambda: (path / "rootfs" / "ran").exists(), "the process ran")
    assert runtime.state("oci-life-wait")["pid"] == state["pid"]  # the same process, exec'd
    runtime("kill", "oci-life-wait", "KILL")
    runtime.wait_status("oci-life-wait", "stopped")
    runtime("delete", "oci-life-wait")
    assert cgroup_dirs("oci-life-wait") == []
    gone = runtime("state", "oci-life-wait", check=False)
    assert gone.returncode == 1 and 'container "oci-life-wait" does not exist' in messages(gone)


def test_operations_in_the_wrong_state_are_errors(runtime: Runtime, bundle: Bundle) -> None:
    path = bundle(LOOP)
    runtime("create", "--bundle", str(path), "oci-life-err")
    twice = runtime("create", "--bundle", str(path), "oci-life-err", check=False)
    assert twice.returncode == 1
    assert 'container with id "oci-life-err" already exists' in messages(twice)
    assert runtime.status("oci-life-err") == "created"  # the first one untouched
    for verb in ("pause", "resume"):
        refused = runtime(verb, "oci-life-err", check=False)
        assert refused.returncode == 1 and "it is created" in messages(refused)
    runtime("start", "oci-life-err")
    again = runtime("start", "oci-life-err", check=False)
    assert again.returncode == 1 and "it is running (only a created container" in messages(again)
    running = runtime("delete", "oci-life-err", check=False)
    assert running.returncode == 1
    assert 'cannot delete container "oci-life-err" that is not stopped: running' in \
        messages(running)
    assert runtime.status("oci-life-err") == "running"
    runtime("kill", "oci-life-err")  # SIGTERM by default; the shell traps it
    runtime.wait_status("oci-life-err", "stopped")
    stopped = runtime("start", "oci-life-err", check=False)
    assert stopped.returncode == 1 and "it is stopped" in messages(stopped)
    killed = runtime("kill", "oci-life-err", "KILL", check=False)
    assert killed.returncode == 1 and "container not running" in messages(killed)
    exec_stopped = runtime("exec", "oci-life-err", "true", check=False)
    assert exec_stopped.returncode == 1 and "it is stopped" in messages(exec_stopped)
    runtime("delete", "oci-life-err")
    for verb in ("state", "start", "kill", "delete", "pause", "ps"):
        missing = runtime(verb, "oci-life-err", check=False)
        assert missing.returncode == 1, verb
        assert 'container "oci-life-err" does not exist' in messages(missing), verb
    assert runtime("delete", "--force", "oci-life-err").returncode == 0  # as runc: nothing


def test_a_created_container_can_be_killed_and_never_runs(runtime: Runtime,
                                                          bundle: Bundle) -> None:
    path = bundle(LOOP)
    runtime("create", "--bundle", str(path), "oci-life-kill")
    runtime("kill", "oci-life-kill", "TERM")
    runtime.wait_status("oci-life-kill", "stopped")
    assert not (path / "rootfs" / "ran").exists()
    runtime("delete", "oci-life-kill")


def test_delete_force_of_a_running_container_leaves_nothing(runtime: Runtime,
                                                           bundle: Bundle) -> None:
    runtime("run", "--detach", "--bundle", str(bundle(["sleep", "1000"])), "oci-life-force")
    runtime("exec", "--detach", "oci-life-force", "sleep", "1000")  # a second process
    pids = json.loads(runtime("ps", "--format", "json", "oci-life-force").stdout)
    assert len(pids) == 2
    runtime("delete", "--force", "oci-life-force")
    assert cgroup_dirs("oci-life-force") == []
    assert not any(Path(f"/proc/{pid}").exists() and
                   Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z" for pid in pids)


def test_run_in_the_foreground_exits_as_the_process_and_deletes_it(
        runtime: Runtime, bundle: Bundle) -> None:
    done = runtime("run", "--bundle", str(bundle(["/bin/sh", "-c", "echo out; exit 7"])),
                   "oci-life-run", check=False)
    assert (done.returncode, done.stdout) == (7, "out\n")
    assert not (runtime.root / "oci-life-run").exists()
    waiting = subprocess.Popen(runtime.command("run", "--bundle", str(bundle(["sleep", "100"])),
                                               "oci-life-run"))
    try:
        eventually(lambda: runtime("state", "oci-life-run", check=False).returncode == 0
                   and runtime.status("oci-life-run") == "running", "the container runs")
        runtime("kill", "oci-life-run", "KILL")
        assert waiting.wait(timeout=30) == 128 + signal.SIGKILL
    finally:
        stop_process(waiting)


def test_exec_runs_in_the_containers_namespaces(runtime: Runtime, bundle: Bundle,
                                               tmp_path: Path) -> None:
    path = bundle(["sleep", "1000"], hostname="oci-box")
    runtime("run", "--detach", "--bundle", str(path), "oci-life-exec")
    seen = runtime("exec", "-e", "EXTRA=1", "oci-life-exec", "/bin/sh", "-c",
                   "hostname; echo $$ $EXTRA; exit 4", check=False)
    assert seen.returncode == 4
    assert seen.stdout.split() == ["oci-box", str(seen.stdout.split()[1]), "1"]
    assert int(seen.stdout.split()[1]) < 10  # a low pid: the container's pid namespace
    process = tmp_path / "process.json"
    process.write_text(json.dumps({
        "args": ["/bin/sh", "-c", "id; umask; echo $HOME"], "cwd": "/tmp", "env": ["HOME=/x"],
        "user": {"uid": 1000, "gid": 1000, "additionalGids": [7], "umask": 0o077}}))
    given = runtime("exec", "--process", str(process), "oci-life-exec")
    assert given.stdout.splitlines() == ["uid=1000(ctr) gid=1000(ctr) groups=7,1000(ctr)",
                                         "0077", "/x"]
    net_admin = 1 << 12
    for flags, has in (((), False), (("--cap", "CAP_NET_ADMIN"), True)):
        status = runtime("exec", *flags, "oci-life-exec", "cat", "/proc/self/status").stdout
        effective = next(line.split()[1] for line in status.splitlines()
                         if line.startswith("CapEff:"))
        assert bool(int(effective, 16) & net_admin) is has, flags
    absent = runtime("exec", "oci-life-exec", "/nope", check=False)
    assert absent.returncode == 1 and "exec /nope: No such file or directory" in messages(absent)


def test_the_process_settings_of_the_config(runtime: Runtime, bundle: Bundle) -> None:
    before = Path("/proc/sys/kernel/msgmax").read_text()
    document = config(["/bin/sh", "-c", "ulimit -n; ulimit -Hn; umask; id -G; "
                       "cat /proc/self/oom_score_adj /proc/sys/kernel/msgmax "
                       "/proc/sys/kernel/domainname; hostname; "
                       "grep -E '^(NoNewPrivs|CapEff)' /proc/self/status"],
                      sysctl={"kernel.msgmax": "4321"})
    document["process"].update({
        "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1000}],
        "user": {"uid": 0, "gid": 0, "umask": 0o027, "additionalGids": [3, 4]},
        "oomScoreAdj": 456, "noNewPrivileges": True,
        "capabilities": {name: ["CAP_KILL", "CAP_CHOWN"] for name in
                         ("bounding", "effective", "permitted")},
    })
    document.update(hostname="oci-settings", domainname="example.test")
    path = bundle(document)
    out = runtime("run", "--bundle", str(path), "oci-life-settings").stdout.splitlines()
    assert out == ["512", "1000", "0027", "0 3 4", "456", "4321", "example.test",
                   "oci-settings", "CapEff:\t0000000000000021", "NoNewPrivs:\t1"]
    assert Path("/proc/sys/kernel/msgmax").read_text() == before  # the host's is its own


@pytest.mark.parametrize(("given", "kept"), [(["CAP_NET_BIND_SERVICE"], "0000000000000400"),
                                             ([], "0000000000000000")], ids=["ambient", "none"])
def test_a_user_keeps_what_its_ambient_set_names(runtime: Runtime, bundle: Bundle,
                                                 given: list[str], kept: str) -> None:
    """As podman writes ``--user 1000 --cap-add NET_BIND_SERVICE``: the bounding set, and the
    added capability in the other four sets, so the user still has it after the exec; without
    it, the user has none (a non-root user's permitted set is cleared by the exec)."""
    document = config(["/bin/sh", "-c", "id -u; grep -E '^Cap(Eff|Bnd|Amb)' /proc/self/status"])
    document["process"]["user"] = {"uid": 1000, "gid": 1000}
    document["process"]["capabilities"] = {
        "bounding": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
        **{name: given for name in ("effective", "inheritable", "permitted", "ambient")}}
    out = runtime("run", "--bundle", str(bundle(document)), "oci-life-ambient").stdout
    assert out.splitlines() == ["1000", f"CapEff:\t{kept}", "CapBnd:\t0000000000000420",
                                f"CapAmb:\t{kept}"]


def test_mounts_paths_and_a_read_only_root(runtime: Runtime, bundle: Bundle,
                                          tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "file").write_text("host\n")
    document = config(["/bin/sh", "-c",
                       "stat -c %a /scratch; grep ' /scratch ' /proc/mounts | cut -d' ' -f4; "
                       "cat /shared/file; echo x > /shared/new; touch /oops; ls /tmp | wc -l; "
                       "head -c1 /proc/kcore | wc -c; echo 1 > /proc/sys/kernel/msgmax; "
                       "cat /dev/mynull; ls -l /dev/mynull | cut -c1"],
                      maskedPaths=["/proc/kcore"], readonlyPaths=["/proc/sys"],
                      devices=[{"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3,
                                "fileMode": 0o666}],
                      resources={"devices": [{"allow": False, "access": "rwm"},
                                             {"allow": True, "type": "c", "major": 1,
                                              "minor": 3, "access": "rw"}]})
    document["root"]["readonly"] = True
    document["mounts"] += [
        {"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "nodev", "mode=1700", "size=1m"]},
        {"destination": "/shared", "type": "bind", "source": str(shared),
         "options": ["rbind", "ro"]},
    ]
    path = bundle(document)
    (path / "rootfs" / "scratch").mkdir(exist_ok=True)
    (path / "rootfs" / "shared").mkdir(exist_ok=True)
    (path / "rootfs" / "tmp" / "from-image").write_text("")
    done = runtime("run", "--bundle", str(path), "oci-life-mounts", check=False)
    lines = done.stdout.splitlines()
    assert lines[0] == "1700" and "nosuid,nodev" in lines[1] and "size=1024k" in lines[1]
    assert lines[2:] == ["host", "1", "0", "c"]  # /tmp is the image's, not a tmpfs of ctr's
    assert "/shared/new: Read-only file system" in messages(done)
    assert "touch: /oops: Read-only file system" in messages(done)
    assert "/proc/sys/kernel/msgmax: Read-only file system" in messages(done)
    assert not (shared / "new").exists() and not (path / "rootfs" / "oops").exists()


def test_cgroups_path_limits_update_and_stats(runtime: Runtime, bundle: Bundle) -> None:
    path = bundle(["sleep", "1000"], name="cg")
    major, minor = (int(n) for n in whole_disk(path).split(":"))
    path = bundle(["sleep", "1000"], name="cg", linux={
        **config([])["linux"], "cgroupsPath": "/ctr-oci-test/oci-life-cg",
        "resources": {"memory": {"limit": 64 << 20}, "pids": {"limit": 20},
                      "cpu": {"quota": 25000, "period": 100000},
                      "blockIO": {"throttleReadBpsDevice": [
                          {"major": major, "minor": minor, "rate": 20 << 20}],
                          "throttleWriteIOPSDevice": [
                          {"major": major, "minor": minor, "rate": 300}]}}})
    runtime("run", "--detach", "--bundle", str(path), "oci-life-cg")
    blkio = Path("/sys/fs/cgroup/blkio/ctr-oci-test/oci-life-cg")
    assert f"{major}:{minor} {20 << 20}\n" in \
        (blkio / "blkio.throttle.read_bps_device").read_text()
    assert f"{major}:{minor} 300\n" in (blkio / "blkio.throttle.write_iops_device").read_text()
    memory = Path("/sys/fs/cgroup/memory/ctr-oci-test/oci-life-cg")
    assert (memory / "memory.limit_in_bytes").read_text() == f"{64 << 20}\n"
    assert Path("/sys/fs/cgroup/pids/ctr-oci-test/oci-life-cg/pids.max").read_text() == "20\n"
    assert Path("/sys/fs/cgroup/cpu/ctr-oci-test/oci-life-cg/cpu.cfs_quota_us").read_text() \
        == "25000\n"
    runtime("update", "--memory", str(128 << 20), "--pids-limit", "30", "oci-life-cg")
    assert (memory / "memory.limit_in_bytes").read_text() == f"{128 << 20}\n"
    runtime("update", "--resources", "-", "oci-life-cg",
            input=json.dumps({"pids": {"limit": 40}, "blockIO": {"throttleReadBpsDevice": [
                {"major": major, "minor": minor, "rate": 10 << 20}]}}))
    assert Path("/sys/fs/cgroup/pids/ctr-oci-test/oci-life-cg/pids.max").read_text() == "40\n"
    assert f"{major}:{minor} {10 << 20}\n" in \
        (blkio / "blkio.throttle.read_bps_device").read_text()
    stats = json.loads(runtime("events", "--stats", "oci-life-cg").stdout)
    assert stats["type"] == "stats" and stats["id"] == "oci-life-cg"
    assert stats["data"]["pids"]["current"] == 1
    assert 0 < stats["data"]["memory"]["usage"]["usage"] < 128 << 20
    assert stats["data"]["memory"]["usage"]["limit"] == 128 << 20
    runtime("delete", "--force", "oci-life-cg")
    assert not Path("/sys/fs/cgroup/memory/ctr-oci-test").exists()


def test_pause_and_resume(runtime: Runtime, bundle: Bundle) -> None:
    runtime("run", "--detach", "--bundle", str(bundle(["sleep", "1000"])), "oci-life-pause")
    runtime("pause", "oci-life-pause")
    assert runtime.status("oci-life-pause") == "paused"
    assert runtime("pause", "oci-life-pause", check=False).returncode == 1
    runtime("resume", "oci-life-pause")
    assert runtime.status("oci-life-pause") == "running"


def hook(kind: str, out: Path, code: int = 0) -> dict[str, Any]:
    """A hook that records its state document (and where it ran) under ``out``."""
    return {"path": "/bin/sh", "args": ["sh", "-c", f"cat > {out}/{kind}.json; "
                                        f"readlink /proc/self/ns/mnt > {out}/{kind}.mnt; "
                                        f"echo {kind} says no >&2; exit {code}"]}


def test_hooks_run_at_their_points_with_the_state(runtime: Runtime, bundle: Bundle,
                                                 tmp_path: Path) -> None:
    out = tmp_path / "hooks"
    out.mkdir()
    kinds = ("prestart", "createRuntime", "createContainer", "poststart", "poststop")
    hooks = {kind: [hook(kind, out)] for kind in kinds}
    hooks["startContainer"] = [{"path": "/bin/sh", "args": [
        "sh", "-c", "cat > /start.json; readlink /proc/self/ns/mnt > /start.mnt"]}]
    path = bundle(["sleep", "1000"], hooks=hooks)
    runtime("create", "--bundle", str(path), "oci-life-hooks")
    pid = runtime.state("oci-life-hooks")["pid"]
    states = {kind: json.loads((out / f"{kind}.json").read_text())
              for kind in ("prestart", "createRuntime", "createContainer")}
    assert {kind: (s["id"], s["pid"], s["status"]) for kind, s in states.items()} == {
        "prestart": ("oci-life-hooks", pid, "creating"),
        "createRuntime": ("oci-life-hooks", pid, "creating"),
        "createContainer": ("oci-life-hooks", pid, "created")}
    host_mnt = os.readlink("/proc/self/ns/mnt")
    assert (out / "createRuntime.mnt").read_text().strip() == host_mnt  # the runtime's
    container_mnt = os.readlink(f"/proc/{pid}/ns/mnt")
    assert (out / "createContainer.mnt").read_text().strip() == container_mnt
    assert not (path / "rootfs" / "start.json").exists()
    runtime("start", "oci-life-hooks")
    eventually(lambda: (path / "rootfs" / "start.mnt").exists(), "startContainer ran")
    assert json.loads((path / "rootfs" / "start.json").read_text())["pid"] == pid
    assert json.loads((out / "poststart.json").read_text())["status"] == "running"
    runtime("delete", "--force", "oci-life-hooks")
    assert json.loads((out / "poststop.json").read_text())["status"] == "stopped"


def test_a_failing_hook_fails_create_and_leaves_nothing(runtime: Runtime, bundle: Bundle,
                                                       tmp_path: Path) -> None:
    path = bundle(["true"], hooks={"createRuntime": [hook("createRuntime", tmp_path, 3)]})
    failed = runtime("create", "--bundle", str(path), "oci-life-badhook", check=False)
    assert failed.returncode == 1
    assert "createRuntime hook /bin/sh failed: exit status 3: createRuntime says no" in \
        messages(failed)
    assert not (runtime.root / "oci-life-badhook").exists()
    assert cgroup_dirs("oci-life-badhook") == []
    warned = bundle(["sleep", "1000"], name="warned",
                    hooks={"poststart": [hook("poststart", tmp_path, 5)]})
    runtime("create", "--bundle", str(warned), "oci-life-badhook")
    started = runtime("start", "oci-life-badhook")
    assert "level=warning" in started.stderr and "poststart says no" in messages(started)
    assert runtime.status("oci-life-badhook") == "running"


def test_the_terminal_goes_over_the_console_socket(runtime: Runtime, bundle: Bundle,
                                                  tmp_path: Path) -> None:
    document = config(["/bin/sh", "-c", "tty; read line; echo got $line"])
    document["process"].update(terminal=True, consoleSize={"height": 33, "width": 99})
    path = bundle(document)
    address = str(tmp_path / "console.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(address)
        listener.listen(1)
        creating = subprocess.Popen(runtime.command("create", "--bundle", str(path),
                                                    "--console-socket", address,
                                                    "oci-life-tty"))
        try:
            connection, _ = listener.accept()
            with connection:
                name, fds, _, _ = socket.recv_fds(connection, 1024, 1)
            assert creating.wait(timeout=30) == 0
        finally:
            stop_process(creating)
    master = fds[0]
    try:
        assert name.startswith(b"/dev/pts/")
        runtime("start", "oci-life-tty")
        seen = b""
        while b"\n" not in seen:  # tty's answer first: typed before, the echo would lead
            seen += os.read(master, 1024)
        assert seen.splitlines()[0] == b"/dev/pts/0"  # the container's own devpts
        os.write(master, b"abc\n")
        while b"got abc" not in seen:
            seen += os.read(master, 1024)
    finally:
        os.close(master)


def test_preserved_descriptors_reach_the_process(runtime: Runtime, bundle: Bundle) -> None:
    read_end, write_end = os.pipe()
    try:
        command = runtime.command("run", "--preserve-fds", "1", "--bundle",
                                  str(bundle(["/bin/sh", "-c", "echo through fd 3 >&3"])),
                                  "oci-life-fds")
        subprocess.run(["/bin/bash", "-c", f'exec "$@" 3>&{write_end}', "bash", *command],
                       pass_fds=(write_end,), check=True, timeout=60)
        os.close(write_end)
        assert os.read(read_end, 100) == b"through fd 3\n"
    finally:
        os.close(read_end)


def test_a_system_call_filter_of_the_config(runtime: Runtime, bundle: Bundle) -> None:
    seccomp = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}
    filtered = runtime("run", "--bundle", str(bundle(["mkdir", "/made"], linux={
        **config([])["linux"], "seccomp": seccomp})), "oci-life-filter", check=False)
    assert filtered.returncode == 1 and "Operation not permitted" in messages(filtered)
    free = runtime("run", "--bundle", str(bundle(["mkdir", "/made"], name="free")),
                   "oci-life-filter", check=False)
    assert free.returncode == 0


def test_no_pivot(runtime: Runtime, bundle: Bundle) -> None:
    done = runtime("run", "--no-pivot", "--bundle", str(bundle(["cat", "/etc/hostname"])),
                   "oci-life-nopivot", check=False)
    assert "No such file" in messages(done)  # busybox has none: the container's root it is
    assert runtime("run", "--no-pivot", "--bundle", str(bundle(["ls", "/bin/busybox"])),
                   "oci-life-nopivot").stdout == "/bin/busybox\n"


def test_features_and_spec(runtime: Runtime, tmp_path: Path, busybox_image: Path) -> None:
    features = json.loads(runtime("features").stdout)
    assert (features["ociVersionMin"], features["ociVersionMax"]) == ("1.0.0", "1.2.0")
    assert "createRuntime" in features["hooks"] and "rbind" in features["mountOptions"]
    assert features["linux"]["apparmor"] == {"enabled": False}
    assert features["linux"]["selinux"] == {"enabled": False}
    bundle_dir = tmp_path / "spec"
    bundle_dir.mkdir()
    runtime("spec", "--bundle", str(bundle_dir))
    again = runtime("spec", "--bundle", str(bundle_dir), check=False)
    assert again.returncode == 1 and "exists: remove it first" in messages(again)
    document = json.loads((bundle_dir / "config.json").read_text())
    assert document["process"]["terminal"] is True and document["root"]["path"] == "rootfs"
    document["process"].update(terminal=False, args=["echo", "from spec"])
    make_bundle(bundle_dir, busybox_image, document)
    assert runtime("run", "--bundle", str(bundle_dir), "oci-life-spec").stdout == "from spec\n"


def test_errors_and_warnings_in_runcs_json_log(runtime: Runtime, bundle: Bundle,
                                              tmp_path: Path) -> None:
    log = tmp_path / "log.json"
    document = config(["true"])
    del document["process"]["args"]
    document["linux"]["newThing"] = True
    path = bundle(document)
    failed = subprocess.run(runtime.command("--log", str(log), "--log-format", "json", "create",
                                            "--bundle", str(path), "oci-life-log"),
                            capture_output=True, text=True, timeout=60)
    assert failed.returncode == 1
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert lines[-1]["level"] == "error"
    assert lines[-1]["msg"] == "process.args: missing: the runtime spec requires it"
    assert "process.args: missing" in messages(failed)
    document["process"]["args"] = ["true"]
    bundle(document)
    runtime("--log", str(log), "--log-format", "json", "create", "--bundle", str(path),
            "oci-life-log")
    warnings = [json.loads(line) for line in log.read_text().splitlines()
                if json.loads(line)["level"] == "warning"]
    assert warnings[0]["msg"].startswith("linux.newThing: not a member of the runtime spec")
