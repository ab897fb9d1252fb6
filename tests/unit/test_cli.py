"""``ctrctl`` as a user runs it, against the API served by an in-memory backend on a tmp socket:
output, exit codes and one-line errors. ``check`` and ``cat`` need no daemon at all."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from supervisor.model.spec import Resources
from supervisor.model.units import CpuSet
from tests.conftest import REPO
from tests.unit.test_api import FakeBackend, served


@dataclass
class Ctl:
    backend: FakeBackend
    socket: Path
    tmp: Path

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "supervisor.cli.main", "--socket", str(self.socket), *args]

    def __call__(self, *args: str, env: dict[str, str] | None = None,
                 timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.command(*args), capture_output=True, text=True, cwd=REPO,
                              timeout=timeout, env=env)

    def fails(self, *args: str) -> str:
        """The one line a failing command prints on stderr."""
        result = self(*args)
        assert result.returncode == 1, result
        assert result.stdout == ""
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        return lines[0]


@pytest.fixture
def ctl(tmp_path: Path) -> Iterator[Ctl]:
    backend = FakeBackend(tmp_path)
    with served(backend, tmp_path / "ctrd.sock"):
        yield Ctl(backend, tmp_path / "ctrd.sock", tmp_path)


def test_list_is_a_table_by_name(ctl: Ctl) -> None:
    result = ctl("list")
    assert result.returncode == 0, result.stderr
    header, *rows = [line.split() for line in result.stdout.splitlines()]
    assert header == ["NAME", "STATE", "PID", "IP", "RESTARTS", "STARTED"]
    assert rows == [["db", "stopped", "-", "-", "0", "-"],
                    ["web", "running", "4242", "10.88.0.2", "1", "1m", "ago"]]


def test_started_column_counts_time(ctl: Ctl) -> None:
    ctl.backend.views["web"] = replace(ctl.backend.views["web"], started_at=time.time() - 7200)
    assert ctl("list").stdout.splitlines()[2].split()[-2:] == ["2h", "ago"]


def test_list_as_json(ctl: Ctl) -> None:
    result = ctl("list", "-o", "json")
    assert result.returncode == 0
    listed = {c["name"]: c for c in json.loads(result.stdout)}
    assert listed == {name: view.to_dict() for name, view in ctl.backend.views.items()}
    assert {"name", "definition", "state", "pid", "ip", "restarts", "started_at"} <= \
        set(listed["web"])


def test_status_as_text_and_json(ctl: Ctl) -> None:
    text = ctl("status", "web")
    assert text.returncode == 0
    fields = dict(line.split(":", 1) for line in text.stdout.splitlines())
    assert {k: v.strip() for k, v in fields.items() if k in ("Name", "State", "PID", "IP",
                                                            "Limits")} == {
        "Name": "web", "State": "running", "PID": "4242", "IP": "10.88.0.2",
        "Limits": "memory_max=64M"}
    assert fields["Started"].strip().endswith("(1m ago)")
    db = ctl("status", "db").stdout
    assert "Last exit:  137 (killed by the OOM killer)" in db
    assert "PID" not in db and "Image" not in db  # nothing to say: left out
    assert json.loads(ctl("status", "web", "-o", "json").stdout) == \
        ctl.backend.views["web"].to_dict()


def test_unknown_container_is_one_line_and_status_1(ctl: Ctl) -> None:
    for verb in ("status", "start", "stop", "logs", "kill"):
        assert ctl.fails(verb, "nope") == "ctrctl: container nope: not found"


@pytest.mark.parametrize(("verb", "name", "field", "value"), [
    ("start", "db", "state", "running"),
    ("stop", "web", "state", "stopped"),
    ("restart", "web", "restarts", 2),
    ("freeze", "web", "frozen", True),
])
def test_control_verbs_print_the_name(ctl: Ctl, verb: str, name: str, field: str,
                                      value: object) -> None:
    result = ctl(verb, name)
    assert (result.returncode, result.stdout, result.stderr) == (0, f"{name}\n", "")
    assert getattr(ctl.backend.views[name], field) == value


def test_freeze_shows_in_list_and_thaw_undoes_it(ctl: Ctl) -> None:
    assert ctl("freeze", "web").returncode == 0
    assert "frozen" in ctl("list").stdout.splitlines()[2].split()
    assert ctl("thaw", "web").returncode == 0
    assert "running" in ctl("list").stdout.splitlines()[2].split()
    assert ctl.fails("freeze", "db") == "ctrctl: container db: not running"


def test_a_failed_start_says_why(ctl: Ctl) -> None:
    ctl.backend.views["db"] = replace(ctl.backend.views["db"], state="failed")
    assert ctl.fails("start", "db") == \
        "ctrctl: container db: start failed: exec /bin/nope: not found"


def test_kill_sends_kill_by_default_or_the_signal_given(ctl: Ctl) -> None:
    assert ctl("kill", "web").returncode == 0
    assert ctl("kill", "-s", "TERM", "web").returncode == 0
    assert ctl("kill", "--signal", "1", "web").returncode == 0
    assert ctl.backend.signals == [("web", signal.SIGKILL), ("web", signal.SIGTERM),
                                   ("web", signal.SIGHUP)]
    assert ctl.fails("kill", "-s", "BOGUS", "web") == (
        "ctrctl: signal: not a signal: 'BOGUS' (use e.g. SIGTERM, SIGQUIT, SIGINT)")


def test_update_sends_the_limits_and_names_a_bad_one(ctl: Ctl) -> None:
    result = ctl("update", "web", "--memory-max", "256M", "--cpu-quota", "50%",
                 "--cpu-weight", "200", "--cpuset-cpus", "0", "--pids-max", "64")
    assert (result.returncode, result.stdout) == (0, "web\n")
    assert ctl.backend.updates == [("web", Resources(memory_max=256 << 20, cpu_quota=0.5,
                                                     cpu_weight=200, cpuset_cpus=CpuSet.of("0"),
                                                     pids_max=64))]
    assert ctl.fails("update", "web", "--memory-max", "lots").startswith(
        "ctrctl: memory_max: not a size: 'lots'")
    assert ctl.fails("update", "web").startswith("ctrctl: update: give at least one of")
    assert len(ctl.backend.updates) == 1


def test_reload_prints_the_changed_definitions(ctl: Ctl) -> None:
    result = ctl("reload")
    assert (result.returncode, result.stdout) == (0, "web\n")


def test_logs_and_their_tail(ctl: Ctl) -> None:
    (ctl.tmp / "web.log").write_text("one\ntwo\nthree\n")
    assert ctl("logs", "web").stdout == "one\ntwo\nthree\n"
    assert ctl("logs", "-n", "2", "web").stdout == "two\nthree\n"
    usage = ctl("logs", "-n", "x", "web")
    assert usage.returncode == 2
    assert usage.stderr.splitlines()[-1] == \
        "ctrctl logs: error: argument -n/--tail: not a number of lines: 'x'"


def test_logs_follow_prints_new_output_and_ends_when_the_container_stops(ctl: Ctl) -> None:
    log = ctl.tmp / "web.log"
    log.write_text("before\n")
    proc = subprocess.Popen(ctl.command("logs", "-f", "web"), stdout=subprocess.PIPE, text=True,
                            cwd=REPO)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "before\n"
        with log.open("a") as f:
            f.write("after\n")
        assert proc.stdout.readline() == "after\n"
        ctl.backend.views["web"] = replace(ctl.backend.views["web"], state="stopped")
        assert proc.wait(timeout=5) == 0
        assert proc.stdout.read() == ""
    finally:
        proc.kill()
        proc.wait()


def test_an_internal_error_is_one_line(ctl: Ctl) -> None:
    ctl.backend.fail_with = RuntimeError("disk on fire\nsecond line")
    assert ctl.fails("list") == "ctrctl: disk on fire; second line"


# -- reaching ctrd --------------------------------------------------------------------------------

def test_no_daemon_is_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "ctrd.sock"
    result = subprocess.run([sys.executable, "-m", "supervisor.cli.main", "--socket", str(path),
                             "list"], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 1
    assert result.stderr == f"ctrctl: cannot reach ctrd at {path}: No such file or directory\n"
    with socket.socket(socket.AF_UNIX) as stale:
        stale.bind(str(path))
        result = subprocess.run([sys.executable, "-m", "supervisor.cli.main", "--socket",
                                 str(path), "status", "web"], capture_output=True, text=True,
                                cwd=REPO)
    assert result.stderr == f"ctrctl: cannot reach ctrd at {path}: Connection refused\n"


def test_a_daemon_that_hangs_up_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "ctrd.sock"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        server.listen()

        def hang_up() -> None:
            connection, _ = server.accept()
            connection.recv(65536)  # the request, unanswered
            connection.close()

        thread = threading.Thread(target=hang_up)
        thread.start()
        result = subprocess.run([sys.executable, "-m", "supervisor.cli.main", "--socket",
                                 str(path), "list"], capture_output=True, text=True, cwd=REPO)
        thread.join()
    assert result.returncode == 1
    assert result.stderr == (f"ctrctl: lost the connection to ctrd at {path}: "
                             "Remote end closed connection without response\n")


def test_socket_from_environment_or_state_dir(ctl: Ctl, tmp_path: Path) -> None:
    base = [sys.executable, "-m", "supervisor.cli.main"]
    environ = {k: v for k, v in os.environ.items() if k not in ("CTR_SOCKET", "CTR_STATE_DIR")}
    via_env = subprocess.run([*base, "list"], capture_output=True, text=True, cwd=REPO,
                             env={**environ, "CTR_SOCKET": str(ctl.socket)})
    assert via_env.returncode == 0 and "web" in via_env.stdout
    via_state = subprocess.run([*base, "--state-dir", str(tmp_path), "list"],
                               capture_output=True, text=True, cwd=REPO, env=environ)
    assert via_state.returncode == 0 and "web" in via_state.stdout
    via_state_env = subprocess.run([*base, "list"], capture_output=True, text=True, cwd=REPO,
                                   env={**environ, "CTR_STATE_DIR": str(tmp_path)})
    assert via_state_env.returncode == 0 and "web" in via_state_env.stdout
    elsewhere = subprocess.run([*base, "list"], capture_output=True, text=True, cwd=REPO,
                               env={**environ, "CTR_STATE_DIR": "/nonexistent"})
    assert elsewhere.stderr.startswith("ctrctl: cannot reach ctrd at /nonexistent/ctrd.sock: ")


def test_client_verbs_import_neither_aiohttp_nor_pyroute2(ctl: Ctl) -> None:
    script = ("import sys; from supervisor.cli.main import main; main(sys.argv[1:]); "
              "print(sorted({m.split('.')[0] for m in sys.modules} & {'aiohttp', 'pyroute2'}))")
    for verb in (["list"], ["status", "web"], ["logs", "web"]):
        result = subprocess.run([sys.executable, "-c", script, "--socket", str(ctl.socket),
                                 *verb], capture_output=True, text=True, cwd=REPO)
        assert result.stdout.splitlines()[-1] == "[]", result


# -- exec -----------------------------------------------------------------------------------------

@pytest.fixture
def target(ctl: Ctl) -> Iterator[int]:
    """A process standing in for a container's PID 1: exec enters its namespaces (the host's)."""
    proc = subprocess.Popen(["sleep", "60"])
    ctl.backend.views["web"] = replace(ctl.backend.views["web"], pid=proc.pid)
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def test_exec_runs_the_command_with_the_containers_settings(ctl: Ctl, target: int) -> None:
    result = ctl("exec", "web", "--", "/bin/sh", "-c", 'echo "port=$PORT cwd=$(pwd)"; exit 3')
    assert (result.returncode, result.stdout) == (3, "port=8080 cwd=/\n"), result.stderr


def test_exec_with_a_terminal(ctl: Ctl, target: int) -> None:
    result = subprocess.run(ctl.command("exec", "-i", "-t", "web", "--", "/bin/sh", "-c",
                                        "test -t 0 && tty"),
                            capture_output=True, text=True, cwd=REPO, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith("/dev/pts/")


def test_exec_stdin_only_with_i(ctl: Ctl, target: int) -> None:
    attached = subprocess.run(ctl.command("exec", "-i", "web", "--", "/bin/cat"), input="hello",
                              capture_output=True, text=True, cwd=REPO, timeout=30)
    assert attached.stdout == "hello"
    detached = subprocess.run(ctl.command("exec", "web", "--", "/bin/cat"), input="hello",
                              capture_output=True, text=True, cwd=REPO, timeout=30)
    assert (detached.returncode, detached.stdout) == (0, "")


def test_exec_into_a_stopped_container_or_without_a_command_fails(ctl: Ctl) -> None:
    assert ctl.fails("exec", "db", "--", "/bin/true") == "ctrctl: container db: not running"
    assert ctl.fails("exec", "web").startswith("ctrctl: exec: no command given")


def test_shell_is_an_interactive_sh(ctl: Ctl, target: int) -> None:
    result = subprocess.run(ctl.command("shell", "web"), input="echo in-$((6*7))\nexit 5\n",
                            capture_output=True, text=True, cwd=REPO, timeout=30)
    assert result.returncode == 5
    assert "in-42" in result.stdout


# -- check and cat: no daemon ---------------------------------------------------------------------

@pytest.fixture
def definitions(tmp_path: Path) -> Path:
    config = tmp_path / "etc"
    config.mkdir()
    shell = tmp_path / "data" / "images" / "busybox" / "bin" / "sh"  # what check looks for
    shell.parent.mkdir(parents=True)
    shell.touch(mode=0o755)
    (config / "web.toml").write_text('[container]\nimage = "busybox"\ncommand = ["/bin/sh"]\n')
    (config / "web.toml.d").mkdir()
    (config / "web.toml.d" / "limits.toml").write_text('[resources]\nmemory_max = "64M"\n')
    (config / "api.toml").write_text('[container]\nimage = "busybox"\n')
    return config


def local(tmp_path: Path, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """ctrctl pointed at a socket nobody listens on: these verbs must not need it."""
    return subprocess.run([sys.executable, "-m", "supervisor.cli.main",
                           "--socket", str(tmp_path / "none.sock"), "--config-dir", str(config),
                           "--data-dir", str(tmp_path / "data"), *args],
                          capture_output=True, text=True, cwd=REPO)


def test_check_all_valid(tmp_path: Path, definitions: Path) -> None:
    result = local(tmp_path, definitions, "check")
    assert (result.returncode, result.stdout, result.stderr) == (0, "api: ok\nweb: ok\n", "")


def test_check_prints_every_error_and_fails(tmp_path: Path, definitions: Path) -> None:
    bad = definitions / "bad.toml"
    bad.write_text('[container]\nimage = "busybox"\nbogus = 1\n[resources]\nmemory_max = "x"\n')
    result = local(tmp_path, definitions, "check")
    assert result.returncode == 1
    assert result.stdout == "api: ok\nweb: ok\n"
    errors = result.stderr.splitlines()
    assert len(errors) == 2
    assert errors[0].startswith(f"{bad}: container.bogus: unknown key")
    assert errors[1].startswith(f"{bad}: resources.memory_max: not a size: 'x'")
    named = local(tmp_path, definitions, "check", "bad")
    assert (named.returncode, named.stderr) == (1, result.stderr)
    assert local(tmp_path, definitions, "check", "web").stdout == "web: ok\n"


def test_check_a_file_before_installing_it(tmp_path: Path, definitions: Path) -> None:
    draft = tmp_path / "draft.toml"
    draft.write_text('[container]\nimage = "busybox"\n[network]\nmode = "bridge"\n')
    result = local(tmp_path, definitions, "check", str(draft))
    assert result.returncode == 1 and result.stderr.startswith(f"{draft}: network.mode")
    draft.write_text('[container]\nimage = "busybox"\n')
    assert local(tmp_path, definitions, "check", str(draft)).stdout == "draft: ok\n"
    missing = local(tmp_path, definitions, "check", "nope")
    assert (missing.returncode, missing.stderr.strip()) == (
        1, f"no definition 'nope' in {definitions}")


def test_cat_shows_the_files_in_merge_order(tmp_path: Path, definitions: Path) -> None:
    result = local(tmp_path, definitions, "cat", "web")
    assert result.returncode == 0
    assert result.stdout == (
        f"# {definitions}/web.toml\n"
        '[container]\nimage = "busybox"\ncommand = ["/bin/sh"]\n\n'
        f"# {definitions}/web.toml.d/limits.toml\n"
        '[resources]\nmemory_max = "64M"\n')
    missing = local(tmp_path, definitions, "cat", "nope")
    assert (missing.returncode, missing.stderr) == (
        1, f"ctrctl: no definition 'nope' in {definitions}\n")


def test_check_uses_ctrd_settings_from_ctrd_toml(tmp_path: Path, definitions: Path) -> None:
    (definitions / "net.toml").write_text(
        '[container]\nimage = "busybox"\n[network]\naddress = "10.99.0.5/16"\n')
    outside = local(tmp_path, definitions, "check", "net")
    assert outside.returncode == 1 and "outside the address pool 10.88.0.0/16" in outside.stderr
    (definitions / "ctrd.toml").write_text('pool = "10.99.0.0/16"\n')
    assert local(tmp_path, definitions, "check", "net").stdout == "net: ok\n"


def test_run_removes_only_the_first_double_dash() -> None:
    """Only the first "--" ends ctrctl's options; a later one is the command's own."""
    from supervisor.cli.local_run import spec_from_args
    from supervisor.cli.main import parse_args

    args = parse_args(["run", "--name", "x", "--", "/bin/echo", "a", "--", "b"])
    assert spec_from_args(args).command == ("/bin/echo", "a", "--", "b")
    args = parse_args(["run", "/bin/echo", "--", "b"])
    assert spec_from_args(args).command == ("/bin/echo", "--", "b")


@pytest.mark.parametrize(("flags", "message"), [
    (["--memory-max", "0"], "argument --memory-max: must be more than 0 bytes"),
    (["--cpuset-cpus", "0-99999999999"], "argument --cpuset-cpus: not a CPU list"),
    (["--cpu-weight", "0"], "argument --cpu-weight: must be between 1 and 10000, got 0"),
    (["--env", "NOEQUALS"], "argument --env/-e: not NAME=VALUE: 'NOEQUALS'"),
    (["--name", "no good"], "argument --name: invalid container name 'no good'"),
    (["--stop-timeout", "soon"], "argument --stop-timeout: not a duration: 'soon'"),
    (["--network", "bridge"], "argument --network: must be one of 'veth', 'none', 'host'"),
])
@pytest.mark.parametrize("where", ["--local", "--daemon"])
def test_run_flags_are_read_by_the_parsers_of_the_definition_keys_here_or_in_ctrd(
        ctl: Ctl, where: str, flags: list[str], message: str) -> None:
    """Started by ctrctl or handed to ctrd: the same parser, the same usage error."""
    result = ctl("run", where, *flags, "--", "/bin/true")
    assert result.returncode == 2, result
    assert result.stderr.splitlines()[-1].startswith(f"ctrctl run: error: {message}"), result


def test_run_through_ctrd_gives_it_our_stdout_and_exits_with_the_containers_status(
        ctl: Ctl) -> None:
    result = ctl("run", "--rm", "--name", "r1", "--", "/bin/echo", "hello")
    assert (result.returncode, result.stdout) == (3, "/bin/echo hello\n"), result
    assert "r1" not in ctl.backend.views  # removed once it ended


def test_run_through_ctrd_loads_neither_the_runtime_nor_an_http_library(ctl: Ctl) -> None:
    """What ctrctl imports to hand a container to ctrd is what a start through ctrd adds."""
    heavy = ["http.client", "ssl", "aiohttp", "pyroute2", "supervisor.runtime.container",
             "supervisor.images.store"]
    # ctrctl run ends with os._exit: the modules are listed there
    script = ("import os, sys; from supervisor.cli.main import main; end = os._exit; "
              "os._exit = lambda code: (print(sorted(set(sys.modules) & set(os.environ["
              "'HEAVY'].split()))), end(code)); main(sys.argv[1:])")
    result = subprocess.run([sys.executable, "-c", script, "--socket", str(ctl.socket), "run",
                             "--name", "r2", "--", "/bin/true"], capture_output=True, text=True,
                            cwd=REPO, env={**os.environ, "HEAVY": " ".join(heavy)})
    assert (result.returncode, result.stdout.splitlines()[-1]) == (3, "[]"), result
