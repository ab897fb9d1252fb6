"""``ctrctl run`` end to end, as root against the real kernel: what a user of the container sees."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import Env
from tests.ignored_signals import LAUNCHER_IGNORES, ignoring

NO_NET = ("--network", "none")


def test_exit_status_is_the_commands(env: Env) -> None:
    assert env.run("/bin/sh", "-c", "exit 7", flags=NO_NET).returncode == 7
    assert env.run("/bin/true", flags=NO_NET).returncode == 0


def test_sigterm_reaches_a_pid_1_that_handles_it(env: Env) -> None:
    proc = env.start(
        *NO_NET, "--", "/bin/sh", "-c",
        "trap 'exit 3' TERM; echo ready; while :; do sleep 0.1; done")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 3


def test_sigterm_to_a_signal_deaf_pid_1_ends_in_a_kill_after_the_timeout(env: Env) -> None:
    proc = env.start(*NO_NET, "--stop-timeout", "0.5s", "--", "/bin/sh", "-c",
                     "echo ready; exec sleep 60")
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 137  # 128 + SIGKILL
    assert 0.4 < time.monotonic() - started < 5


def test_missing_command_is_a_clear_error(env: Env) -> None:
    result = env.run("/no/such/program", flags=NO_NET)
    assert result.returncode != 0
    assert "exec /no/such/program" in result.stderr
    assert "No such file" in result.stderr


def test_root_is_the_image(env: Env) -> None:
    out = env.run("/bin/ls", "/", flags=NO_NET, check=True).stdout.split()
    assert {"bin", "etc", "proc", "dev", "tmp"} <= set(out)
    assert "home" in out and "work" not in out  # the image's tree, not the host's
    marker = env.run("/bin/cat", "/etc/passwd", flags=NO_NET, check=True).stdout
    assert "ctr:x:1000:1000" in marker


def test_old_root_is_gone_after_pivot_root(env: Env) -> None:
    mountinfo = env.run("/bin/cat", "/proc/self/mountinfo", flags=NO_NET, check=True).stdout
    roots = [line.split()[4] for line in mountinfo.splitlines()]
    assert roots[0] == "/"
    assert all(not r.startswith("/work") and "oldroot" not in r for r in roots)
    # chroot would leave the host's / reachable through /proc/1/root's mount table
    assert " - ext4 " not in mountinfo.split("\n")[0]


def test_hostname_defaults_to_the_name_and_can_be_set(env: Env) -> None:
    named = env.run("/bin/hostname", flags=(*NO_NET, "--name", "alpha"), check=True)
    assert named.stdout.strip() == "alpha"
    custom = env.run("/bin/hostname", flags=(*NO_NET, "--hostname", "web1"), check=True)
    assert custom.stdout.strip() == "web1"


def test_ps_shows_only_the_container_with_the_command_as_pid_1(env: Env) -> None:
    out = env.run("/bin/sh", "-c", "sleep 30 & ps -o pid,args; true", flags=NO_NET,
                  check=True).stdout
    rows = [line.split(None, 1) for line in out.strip().splitlines()[1:]]
    assert rows[0][0] == "1" and rows[0][1].startswith("/bin/sh -c")
    assert len(rows) == 3  # the shell, sleep and ps: no host process is visible
    assert all(int(pid) < 10 for pid, _ in rows)


def test_dev_is_minimal_with_private_devpts(env: Env) -> None:
    out = env.run("/bin/ls", "/dev", "/dev/pts", flags=NO_NET, check=True).stdout
    names = set(out.split())
    assert {"null", "zero", "full", "random", "urandom", "tty", "ptmx", "shm", "pts"} <= names
    assert "sda" not in names and "vda" not in names and "mem" not in names
    head = env.run("/bin/sh", "-c", "head -c 4 /dev/zero | od -An -tx1", flags=NO_NET,
                   check=True).stdout
    assert head.split() == ["00"] * 4


def test_sys_is_read_only_and_proc_paths_are_masked(env: Env) -> None:
    script = ("touch /sys/kernel/x 2>/dev/null && echo sys-writable; "
              "echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo procsys-writable; "
              "wc -c < /proc/keys; echo done")
    out = env.run("/bin/sh", "-c", script, flags=NO_NET, check=True).stdout
    assert "sys-writable" not in out and "procsys-writable" not in out
    assert out.split() == ["0", "done"]


def _mount_options(env: Env, *flags: str) -> dict[str, set[str]]:
    """Mount point -> its per-mount options, as /proc/self/mountinfo shows them inside."""
    info = env.run("/bin/cat", "/proc/self/mountinfo", flags=(*NO_NET, *flags),
                   check=True).stdout
    return {fields[4]: set(fields[5].split(",")) for fields in
            (line.split() for line in info.splitlines())}


def test_kernel_file_systems_are_mounted_with_dockers_options(env: Env) -> None:
    options = _mount_options(env)
    for target in ("/proc", "/sys", "/dev/shm", "/dev/mqueue"):
        assert {"nosuid", "nodev", "noexec"} <= options[target], target
    assert {"nosuid", "noexec"} <= options["/dev/pts"]
    assert "nosuid" in options["/dev"]


@pytest.mark.parametrize("path", ["/sys/firmware", "/sys/devices/virtual/powercap"])
def test_sys_paths_that_reveal_the_host_are_masked(env: Env, path: str) -> None:
    if not Path(path).is_dir():
        pytest.skip(f"this kernel has no {path}")
    assert path not in _mount_options(env, "--privileged")
    assert env.run("/bin/ls", "-A", path, flags=("--privileged", *NO_NET),
                   check=True).stdout.strip(), "the host's directory has entries"
    assert path in _mount_options(env)
    assert env.run("/bin/ls", "-A", path, flags=NO_NET, check=True).stdout.strip() == ""


def test_privileged_keeps_capabilities_and_unmasked_proc(env: Env) -> None:
    caps = env.run("/bin/grep", "CapEff", "/proc/self/status", flags=(*NO_NET, "--privileged"),
                   check=True).stdout
    assert int(caps.split()[1], 16) & (1 << 21)  # CAP_SYS_ADMIN


def test_default_capabilities_and_no_new_privs(env: Env) -> None:
    status = env.run("/bin/cat", "/proc/self/status", flags=NO_NET, check=True).stdout
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    effective = int(fields["CapEff"], 16)
    assert effective & (1 << 0)  # CAP_CHOWN kept
    assert not effective & (1 << 21)  # CAP_SYS_ADMIN gone
    assert int(fields["CapBnd"], 16) == effective
    assert fields["NoNewPrivs"].strip() == "1"
    denied = env.run("/bin/sh", "-c", "mount -t tmpfs t /mnt 2>&1 || echo denied",
                     flags=NO_NET).stdout
    assert "denied" in denied


def test_the_command_starts_with_no_signal_ignored_or_blocked(env: Env) -> None:
    """Not even SIGPIPE and SIGXFSZ, which the Python that forks PID 1 ignores, nor what the
    launcher of ctrctl ignored (SIGHUP under nohup, glibc's own signal 32 under some CI runners),
    with and without the init."""
    for init in ((), ("--init",)):
        with ignoring(*LAUNCHER_IGNORES) as mask:
            out = env.run("/bin/grep", "-E", "^Sig(Ign|Blk)", "/proc/self/status",
                          flags=(*NO_NET, *init), check=True).stdout
            status = Path("/proc/self/status").read_text().splitlines()
        own = dict(line.split(":\t") for line in status)
        assert int(own["SigIgn"], 16) & mask == mask  # ctrctl's launcher did ignore them
        assert dict(line.split() for line in out.splitlines()) == {
            "SigBlk:": "0000000000000000", "SigIgn:": "0000000000000000"}


def test_user_environment_and_workdir(env: Env) -> None:
    out = env.run("/bin/sh", "-c", "id -u; id -g; echo $GREETING; pwd; echo $HOME",
                  flags=(*NO_NET, "--user", "ctr", "--env", "GREETING=hi", "--workdir", "/srv"),
                  check=True).stdout.split()
    assert out == ["1000", "1000", "hi", "/srv", "/home/ctr"]
    numeric = env.run("id", "-u", flags=(*NO_NET, "--user", "4242:4242"), check=True)
    assert numeric.stdout.strip() == "4242"
    caps = env.run("/bin/grep", "CapEff", "/proc/self/status", flags=(*NO_NET, "--user", "ctr"),
                   check=True).stdout
    assert int(caps.split()[1], 16) == 0


def test_unknown_user_fails_clearly(env: Env) -> None:
    result = env.run("/bin/true", flags=(*NO_NET, "--user", "nobody-here"))
    assert result.returncode != 0 and "nobody-here" in result.stderr


def test_writes_go_to_a_private_layer_and_rm_discards_it(env: Env) -> None:
    env.run("/bin/sh", "-c", "echo changed > /etc/motd", flags=(*NO_NET, "--name", "w1"),
            check=True)
    image = env.data / "images" / "busybox"
    assert not (image / "etc" / "motd").exists()  # the image is never written
    assert not (env.data / "containers" / "w1").exists()  # --rm


def test_layer_persists_without_rm(env: Env) -> None:
    first = env.ctrctl("run", *NO_NET, "--name", "keep", "--", "/bin/sh", "-c",
                       "echo kept > /root/file", check=True)
    assert first.returncode == 0
    again = env.ctrctl("run", *NO_NET, "--rm", "--name", "keep", "--", "/bin/cat", "/root/file")
    assert again.stdout.strip() == "kept"


def test_read_only_root(env: Env) -> None:
    out = env.run("/bin/sh", "-c", "touch /x 2>/dev/null || echo readonly",
                  flags=(*NO_NET, "--read-only")).stdout
    assert "readonly" in out


def test_mounts_bind_ro_rw_tmpfs_and_nested(env: Env, tmp_path: Path) -> None:
    www = tmp_path / "www"
    (www / "inner").mkdir(parents=True)
    (www / "index.html").write_text("hello\n")
    rw = tmp_path / "rw"
    rw.mkdir()
    nested = tmp_path / "nested"
    nested.mkdir()
    (nested / "deep.txt").write_text("deep\n")
    script = ("cat /www/index.html; cat /www/inner/deep.txt; "
              "touch /www/x 2>/dev/null || echo ro-ok; echo data > /data/out; "
              "mount | grep ' /scratch ' | cut -d' ' -f1,5")
    out = env.run("/bin/sh", "-c", script, flags=(
        *NO_NET, "--mount", f"{www}:/www:ro", "--mount", f"{nested}:/www/inner:ro",
        "--mount", f"{rw}:/data", "--tmpfs", "/scratch:1M"), check=True).stdout.split()
    assert out == ["hello", "deep", "ro-ok", "tmpfs", "tmpfs"]
    assert (rw / "out").read_text() == "data\n"


def test_missing_mount_source_is_a_clear_error(env: Env, tmp_path: Path) -> None:
    result = env.run("/bin/true", flags=(*NO_NET, "--mount", f"{tmp_path}/nope:/x"))
    assert result.returncode != 0 and "nope" in result.stderr


@pytest.mark.parametrize("memory", ["32M"])
def test_memory_limit_kills_a_hog_that_runs_without_it(env: Env, memory: str) -> None:
    hog = "x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo survived ${#x}"
    limited = env.run("/bin/sh", "-c", hog, flags=(*NO_NET, "--memory-max", memory))
    assert limited.returncode == 137 and "survived" not in limited.stdout
    free = env.run("/bin/sh", "-c", hog, flags=NO_NET, timeout=120)
    assert free.returncode == 0 and "survived 100000000" in free.stdout


def test_pids_limit_stops_forks(env: Env) -> None:
    forks = "for i in 1 2 3 4 5 6 7 8; do sleep 1 & done; wait; echo all-forked"
    limited = env.run("/bin/sh", "-c", forks, flags=(*NO_NET, "--pids-max", "4"))
    assert "can't fork" in limited.stderr and "all-forked" not in limited.stdout
    free = env.run("/bin/sh", "-c", forks, flags=NO_NET)
    assert free.stdout.strip() == "all-forked"


def test_cpu_quota_holds_a_busy_loop(env: Env) -> None:
    busy = "time -p timeout 2 sh -c 'while :; do :; done'"
    limited = env.run("/bin/sh", "-c", busy, flags=(*NO_NET, "--cpu-quota", "20%")).stderr
    free = env.run("/bin/sh", "-c", busy, flags=NO_NET).stderr

    def cpu_seconds(report: str) -> float:
        return sum(float(line.split()[1]) for line in report.splitlines()
                   if line.startswith(("user", "sys")))

    assert cpu_seconds(limited) < 0.7  # 20 % of 2 s is 0.4 s
    assert cpu_seconds(free) > 1.5


def test_cgroup_namespace_hides_the_host_hierarchy(env: Env) -> None:
    out = env.run("/bin/cat", "/proc/self/cgroup", flags=NO_NET, check=True).stdout
    lines = out.strip().splitlines()
    assert lines and all(line.endswith(":/") for line in lines)  # its own cgroup is its root


def test_cpuset_pins_the_container(env: Env) -> None:
    out = env.run("/bin/grep", "Cpus_allowed_list", "/proc/self/status",
                  flags=(*NO_NET, "--cpuset-cpus", "0"), check=True).stdout
    assert out.split()[1] == "0"
    bad = env.run("/bin/true", flags=(*NO_NET, "--cpuset-cpus", "99"))
    assert bad.returncode == 2 and "CPU 99 of '99' is not on this host" in bad.stderr


def test_mount_points_inside_read_only_layers(env: Env, tmp_path: Path) -> None:
    """A mount nested in a read-only mount, or in a read-only root, whose target is missing."""
    outer = tmp_path / "outer"
    outer.mkdir()
    (outer / "index.html").write_text("outer\n")
    inner = tmp_path / "inner"
    inner.mkdir()
    (inner / "page.html").write_text("inner\n")
    config = tmp_path / "app.conf"
    config.write_text("conf\n")
    out = env.run("/bin/sh", "-c", "cat /web/index.html /web/home/page.html /etc/app/app.conf; "
                  "touch /web/x 2>/dev/null || echo web-ro; touch /y 2>/dev/null || echo root-ro",
                  flags=(*NO_NET, "--read-only", "--mount", f"{outer}:/web:ro",
                         "--mount", f"{inner}:/web/home", "--mount",
                         f"{config}:/etc/app/app.conf:ro"), check=True).stdout.split()
    assert out == ["outer", "inner", "conf", "web-ro", "root-ro"]
    assert sorted(p.name for p in outer.iterdir()) == ["index.html"]  # the host dir untouched


def test_cap_add_and_drop_change_what_root_may_do(env: Env) -> None:
    """As docker's --cap-add/--cap-drop: SYS_ADMIN lets root mount (the filter follows the
    capability), dropping ALL takes even chown away."""
    mount = ("/bin/sh", "-c", "mkdir -p /mnt && mount -t tmpfs none /mnt && echo mounted")
    assert "mounted" not in env.run(*mount, flags=NO_NET).stdout
    assert "mounted" in env.run(*mount, flags=(*NO_NET, "--cap-add", "SYS_ADMIN")).stdout
    chown = ("/bin/sh", "-c", "touch /f && chown 1000 /f && echo chowned")
    assert "chowned" in env.run(*chown, flags=NO_NET).stdout
    assert "chowned" not in env.run(*chown, flags=(*NO_NET, "--cap-drop", "ALL")).stdout
    status = env.run("/bin/grep", "CapEff", "/proc/self/status",
                     flags=(*NO_NET, "--cap-drop", "ALL", "--cap-add", "NET_BIND_SERVICE"),
                     check=True).stdout
    assert status.split()[1] == f"{1 << 10:016x}"  # CAP_NET_BIND_SERVICE alone


def test_seccomp_unconfined_and_a_profile_file(env: Env, tmp_path: Path) -> None:
    def seccomp(*flags: str) -> str:
        out = env.run("/bin/grep", "^Seccomp:", "/proc/self/status", flags=(*NO_NET, *flags),
                      check=True).stdout
        return out.split()[1]

    assert seccomp() == "2"  # filtered by default
    assert seccomp("--security-opt", "seccomp=unconfined") == "0"
    assert seccomp("--privileged") == "0"
    profile = tmp_path / "allow-all.json"
    profile.write_text('{"defaultAction": "SCMP_ACT_ALLOW"}')
    assert seccomp("--security-opt", f"seccomp={profile}") == "2"
    bad = env.run("/bin/true", flags=(*NO_NET, "--security-opt", "seccomp=/nope.json"))
    assert bad.returncode == 2 and "/nope.json" in bad.stderr


def test_init_is_pid_1_and_the_command_pid_2(env: Env) -> None:
    out = env.run("/bin/sh", "-c", "echo $$; cat /proc/1/comm", flags=(*NO_NET, "--init"),
                  check=True).stdout
    assert out.split() == ["2", "ctr-init"]
    assert env.run("/bin/sh", "-c", "exit 3", flags=(*NO_NET, "--init")).returncode == 3
