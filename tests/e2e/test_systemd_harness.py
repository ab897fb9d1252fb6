"""The test harness's booted systemd: up quickly, usable, gone without a trace afterwards."""

from __future__ import annotations

import time
from pathlib import Path

from tests.systemd_harness import booted_systemd


def test_boots_runs_commands_and_leaves_nothing_behind() -> None:
    started = time.monotonic()
    with booted_systemd() as machine:
        assert time.monotonic() - started < 15
        assert machine.run(["systemctl", "is-system-running"], check=False).stdout.strip() in (
            "running", "degraded")
        assert machine.run(["cat", "/proc/1/comm"]).stdout.strip() == "systemd"
        scope = machine.run(["systemd-run", "--scope", "-p", "Delegate=yes", "--unit",
                             "harness-probe", "cat", "/proc/self/cgroup"]).stdout
        assert "/system.slice/harness-probe.scope" in scope
        cgroups, pid = machine.cgroup_dirs(), machine.pid
        assert all(directory.is_dir() for directory in cgroups)
    assert not any(directory.exists() for directory in cgroups)
    assert not Path(f"/proc/{pid}").exists()
