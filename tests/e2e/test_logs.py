"""Bounded logs without systemd: the shim writes DATA_DIR/logs/NAME.log as CRI records, rotates
it at [logs] max_size keeping max_files, and goes on while ctrd is killed; ``ctrctl logs`` reads
it back by time, by count, by run. tests/e2e/test_systemd_e2e.py runs the journal's side."""

from __future__ import annotations

import datetime
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from supervisor.cli.client import Client
from tests.e2e.conftest import Daemon

STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z")


def flood(count: int, max_size: str, max_files: int, *, pause: str = "",
          policy: str = "no") -> str:
    """A definition printing ``line-1`` .. ``line-COUNT`` (``pause``: a shell command between
    every thousand), then ``done``, then sleeping. ``done`` goes to stdout behind the lines: on
    stderr the shim may read it while a full stdout pipe still holds thousands of lines, and a
    cap of a few files then rotates it away."""
    pace = f'[ $((i % 1000)) -eq 0 ] && {pause}; ' if pause else ""
    return f"""
[container]
image = "busybox"
command = ["/bin/sh", "-c", "i=1; while [ $i -le {count} ]; do echo line-$i; {pace}\
i=$((i+1)); done; echo done; exec sleep 600"]
[network]
mode = "none"
[logs]
max_size = "{max_size}"
max_files = {max_files}
[restart]
policy = "{policy}"
stop_timeout = "100ms"
"""


def log_files(ctrd: Daemon, name: str) -> list[Path]:
    """NAME.log and its rotated files, oldest first."""
    directory = ctrd.env.data / "logs"
    rotated = sorted(directory.glob(f"{name}.log.*"), key=lambda p: -int(p.suffix[1:]))
    return [*rotated, *directory.glob(f"{name}.log")]


def numbers(text: str) -> list[int]:
    return [int(line.removeprefix("line-")) for line in text.split() if line.startswith("line-")]


def wait_for_log(ctrd: Daemon, name: str, wanted: str, timeout: float = 60) -> str:
    """The output once ``wanted`` is in it. A flood on a loaded machine may take long: the
    wait fails once the output has not changed for ``timeout`` seconds (or after five times
    that in all), saying what the container and its files were then."""
    deadline, last, end = time.monotonic() + timeout, "", time.monotonic() + 5 * timeout
    while wanted not in (text := ctrd.ctl("logs", name).stdout):
        if text != last:
            deadline, last = min(end, time.monotonic() + timeout), text
        assert time.monotonic() < deadline, (
            f"{name}: no {wanted!r} in {text[-500:]!r}; "
            f"status: {ctrd.ctl('status', name, check=False).stdout}; files: "
            f"{[(p.name, p.stat().st_size, p.read_bytes()[-200:]) for p in log_files(ctrd, name)]}")
        time.sleep(0.1)
    return text


def test_every_line_is_kept_across_rotations_in_files_of_max_size(ctrd: Daemon) -> None:
    ctrd.define("log-flood", flood(20000, "64K", 30))
    ctrd.start()
    ctrd.ctl("start", "log-flood")
    text = wait_for_log(ctrd, "log-flood", "done")
    assert numbers(text) == list(range(1, 20001))
    files = log_files(ctrd, "log-flood")
    assert 10 < len(files) <= 30  # 20000 records of ~50 bytes: rotated, none dropped
    assert all(path.stat().st_size <= 64 << 10 for path in files)
    records = b"".join(path.read_bytes() for path in files).splitlines()
    assert re.fullmatch(rb"\S+ stdout P ", records[0])  # the mark of the run's beginning
    assert all(re.fullmatch(rb"\d{4}-\S+Z std(out|err) [FP] .*", r) for r in records)
    ctrd.ctl("stop", "log-flood")


def test_a_flood_beyond_the_cap_keeps_max_files_of_its_newest_lines(ctrd: Daemon) -> None:
    ctrd.define("log-cap", flood(40000, "64K", 3))
    ctrd.start()
    ctrd.ctl("start", "log-cap")
    kept = numbers(wait_for_log(ctrd, "log-cap", "done"))
    assert kept == list(range(kept[0], 40001))  # the newest, in order, without a gap
    assert 3000 < len(kept) < 5000  # what three files of 64K hold
    assert [p.name for p in log_files(ctrd, "log-cap")] == [
        "log-cap.log.2", "log-cap.log.1", "log-cap.log"]
    ctrd.ctl("stop", "log-cap")


def test_no_line_is_lost_while_ctrd_is_killed_and_restarted_during_a_flood(
        ctrd: Daemon) -> None:
    ctrd.define("log-kill", flood(30000, "64K", 40, pause="sleep 0.1"))
    ctrd.start()
    ctrd.ctl("start", "log-kill")
    wait_for_log(ctrd, "log-kill", "line-3000")
    ctrd.kill(signal.SIGKILL)
    time.sleep(1)  # the container floods on, its shim rotating, while no ctrd runs
    ctrd.start()
    text = wait_for_log(ctrd, "log-kill", "done")
    assert numbers(text) == list(range(1, 30001))
    assert len(log_files(ctrd, "log-kill")) > 10
    ctrd.ctl("stop", "log-kill")


GATED = """
[container]
image = "busybox"
command = ["/bin/sh", "-c", "echo ready; while [ ! -e /gate/go ]; do sleep 0.05; done; i=1; \
while [ $i -le 8000 ]; do echo line-$i; [ $((i % 500)) -eq 0 ] && sleep 0.2; i=$((i+1)); done; \
echo done >&2; exec sleep 600"]
[[mounts]]
source = "{gate}"
target = "/gate"
[network]
mode = "none"
[logs]
max_size = "64K"
max_files = 2
[restart]
stop_timeout = "100ms"
"""


def test_follow_goes_on_across_rotations(ctrd: Daemon, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    gate.mkdir()
    ctrd.define("log-follow", GATED.format(gate=gate))
    ctrd.start()
    ctrd.ctl("start", "log-follow")
    follower = ctrd.env.start_background("logs", "-f", "log-follow")
    try:
        assert follower.stdout is not None
        assert follower.stdout.readline() == "ready\n"
        (gate / "go").touch()  # six files' worth in 3 s, of which two are kept
        wait_for_log(ctrd, "log-follow", "done")
        ctrd.ctl("stop", "log-follow")
        out, _ = follower.communicate(timeout=30)  # ends with the container
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    assert numbers(out) == list(range(1, 8001))
    assert "done" in out


TIMED = """
[container]
image = "busybox"
command = ["/bin/sh", "-c", "echo first; sleep 0.3; echo second >&2; sleep 0.3; \
printf 'third\\\\nno newline'; exec sleep 600"]
[network]
mode = "none"
[restart]
stop_timeout = "100ms"
"""


def test_timestamps_since_until_and_tail(ctrd: Daemon) -> None:
    ctrd.define("log-times", TIMED)
    ctrd.start()
    before = datetime.datetime.now(datetime.UTC)
    ctrd.ctl("start", "log-times")
    wait_for_log(ctrd, "log-times", "no newline")
    after = datetime.datetime.now(datetime.UTC)
    stamped = ctrd.ctl("logs", "-t", "log-times").stdout
    lines = stamped.split("\n")
    assert [line.split(" ", 1)[1] for line in lines] == ["first", "second", "third",
                                                         "no newline"]
    stamps = [line.split(" ", 1)[0] for line in lines]
    assert all(STAMP.fullmatch(s) for s in stamps)
    times = [datetime.datetime.fromisoformat(s[:26] + "+00:00") for s in stamps]
    assert before - datetime.timedelta(seconds=1) <= times[0] <= times[1] <= times[2] <= after
    assert ctrd.ctl("logs", "log-times").stdout == "first\nsecond\nthird\nno newline"
    assert ctrd.ctl("logs", "--since", stamps[1], "log-times").stdout == \
        "second\nthird\nno newline"
    assert ctrd.ctl("logs", "--until", stamps[1], "log-times").stdout == "first\nsecond\n"
    assert ctrd.ctl("logs", "--since", stamps[1], "--until", stamps[1],
                    "log-times").stdout == "second\n"
    assert ctrd.ctl("logs", "-n", "2", "log-times").stdout == "third\nno newline"
    assert ctrd.ctl("logs", "-n", "1", "--until", stamps[1], "log-times").stdout == "second\n"
    assert ctrd.ctl("logs", "--since", "1h", "log-times").stdout.startswith("first\n")
    assert ctrd.ctl("logs", "--since", "2999-01-01", "log-times").stdout == ""
    usage = ctrd.ctl("logs", "--since", "yesterday-ish", "log-times", check=False)
    assert usage.returncode == 2 and "not a time: 'yesterday-ish'" in usage.stderr
    ctrd.ctl("stop", "log-times")


RUNS = """
[container]
image = "busybox"
command = ["/bin/sh", "-c", "n=$(cat /state/n 2>/dev/null || echo 0); n=$((n+1)); \
echo $n > /state/n; echo run-$n; printf 'unended-'$n; [ $n -ge 3 ] && exec sleep 600; exit 1"]
[[mounts]]
source = "{state}"
target = "/state"
[network]
mode = "none"
[restart]
policy = "on-failure"
delay = "100ms"
stop_timeout = "100ms"
"""


def test_previous_shows_the_run_before_the_last(ctrd: Daemon, tmp_path: Path) -> None:
    state = tmp_path / "runs"
    state.mkdir()
    ctrd.define("log-runs", RUNS.format(state=state))
    ctrd.start()
    ctrd.ctl("start", "log-runs", check=False)
    ctrd.wait_for("log-runs", lambda s: s["state"] == "running" and s["restarts"] == 2)
    wait_for_log(ctrd, "log-runs", "unended-3")
    # Every run is kept, as docker keeps them; a line a run left unended ends with it.
    assert ctrd.ctl("logs", "log-runs").stdout == (
        "run-1\nunended-1run-2\nunended-2run-3\nunended-3")
    assert ctrd.ctl("logs", "-n", "3", "log-runs").stdout == "unended-2run-3\nunended-3"
    assert ctrd.ctl("logs", "--previous", "log-runs").stdout == "run-2\nunended-2"
    assert ctrd.ctl("logs", "-p", "-n", "1", "log-runs").stdout == "unended-2"
    ctrd.ctl("stop", "log-runs")
    ctrd.ctl("start", "log-runs")  # a fourth run: the third is now the previous one
    wait_for_log(ctrd, "log-runs", "run-4")
    assert ctrd.ctl("logs", "-p", "log-runs").stdout == "run-3\nunended-3"
    ctrd.ctl("stop", "log-runs")


def test_a_container_in_a_user_namespace_is_logged_and_rotated(ctrd: Daemon) -> None:
    ctrd.define("log-userns", flood(5000, "64K", 10) + "[namespaces]\nuser = true\n")
    ctrd.start()
    ctrd.ctl("start", "log-userns")
    assert numbers(wait_for_log(ctrd, "log-userns", "done")) == list(range(1, 5001))
    assert len(log_files(ctrd, "log-userns")) > 2
    ctrd.ctl("stop", "log-userns")


@pytest.mark.parametrize(("key", "value", "reason"), [
    ("max_size", '"1K"', "must be at least 64K, got '1K'"),
    ("max_files", "0", "must be between 1 and 1000, got 0"),
    ("max_age", '"1d"', "unknown key"),
])
def test_a_bad_logs_key_is_named_by_ctrctl_check(ctrd: Daemon, key: str, value: str,
                                                 reason: str) -> None:
    definition = ctrd.config_dir / "log-bad.toml"
    definition.write_text(f'[container]\nimage = "busybox"\n[logs]\n{key} = {value}\n')
    result = subprocess.run(ctrd.env.command("--config-dir", str(ctrd.config_dir), "check",
                                             "log-bad"), capture_output=True, text=True)
    assert result.returncode != 0
    assert f"{definition}: logs.{key}: {reason}" in result.stdout + result.stderr


def test_an_instance_takes_its_log_files_along_when_removed(ctrd: Daemon) -> None:
    """As ``docker rm`` removes a container's log; a definition's own container keeps its."""
    ctrd.define("log-def", flood(3000, "64K", 5))
    ctrd.start()
    api = Client(ctrd.socket)
    api.call("POST", "/v1/containers", {"definition": "log-def", "name": "log-inst"})
    assert numbers(wait_for_log(ctrd, "log-inst", "done")) == list(range(1, 3001))
    assert len(log_files(ctrd, "log-inst")) > 1
    api.call("DELETE", "/v1/containers/log-inst")
    assert log_files(ctrd, "log-inst") == []
    ctrd.ctl("start", "log-def")
    wait_for_log(ctrd, "log-def", "done")
    ctrd.ctl("stop", "log-def")
    assert len(log_files(ctrd, "log-def")) > 1


def test_fewer_max_files_apply_at_the_next_start(ctrd: Daemon) -> None:
    ctrd.define("log-shrink", flood(6000, "64K", 10))
    ctrd.start()
    ctrd.ctl("start", "log-shrink")
    wait_for_log(ctrd, "log-shrink", "done")
    ctrd.ctl("stop", "log-shrink")
    assert len(log_files(ctrd, "log-shrink")) > 3
    ctrd.define("log-shrink", flood(10, "64K", 2))
    ctrd.ctl("reload")
    ctrd.ctl("start", "log-shrink")
    assert "line-10\n" in wait_for_log(ctrd, "log-shrink", "line-10\n")
    assert [p.name for p in log_files(ctrd, "log-shrink")] == [
        "log-shrink.log.1", "log-shrink.log"]  # the shim removed the files beyond two
    ctrd.ctl("stop", "log-shrink")
