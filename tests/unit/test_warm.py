"""The warm pool's parts that need no kernel: how a launch plan crosses to the process that
forks PID 1, how the zygote reopens ctrd's cgroup driver, and the ``warm_pool`` setting."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from supervisor.config.daemon import DaemonConfigError, daemon_config
from supervisor.runtime import process, security, warm
from supervisor.runtime.cgroups.detect import open_driver
from supervisor.runtime.cgroups.v1.driver import V1Driver
from supervisor.runtime.cgroups.v2.driver import V2Driver
from supervisor.runtime.logwriter import LogTarget
from supervisor.runtime.seccomp import Program
from tests.fake_cgroupfs import make_v1_root, make_v2_root

ALLOW = bytes.fromhex("060000000000ff7f")  # one instruction: BPF_RET | BPF_K, SECCOMP_RET_ALLOW


def plan(**fields: object) -> process.LaunchPlan:
    confinement = security.Confinement(capabilities=0, no_new_privs=True,
                                       seccomp=Program(ALLOW, "key", flags=1), profile="default")
    return process.LaunchPlan(argv=("/bin/true",), namespaces=0, rootfs=None,
                              confinement=confinement, **fields)  # type: ignore[arg-type]


def test_the_plan_names_the_descriptors_it_came_with_after_the_socket() -> None:
    sent = plan(stdio=(10, 11, 12), pass_fds=(20, 21),
                log=LogTarget("/var/lib/ctr/logs", "web.log", 1 << 20, 3, journal=30))
    assert warm._descriptors(sent) == [10, 11, 12, 20, 21, 30]
    received = warm._with_descriptors(pickle.loads(pickle.dumps(sent)), [3, 4, 5, 6, 7, 8])
    assert received.stdio == (3, 4, 5) and received.pass_fds == (6, 7)
    assert received.log is not None and received.log.journal == 8
    assert received.log.name == "web.log" and received.argv == ("/bin/true",)


def test_a_plan_without_stdio_or_log_sends_no_descriptor() -> None:
    sent = plan()
    assert warm._descriptors(sent) == []
    assert warm._with_descriptors(sent, []) == sent


def test_the_compiled_filter_crosses_intact() -> None:
    program = pickle.loads(pickle.dumps(plan())).confinement.seccomp
    assert isinstance(program, Program)
    assert (program.code, program.key, program.flags) == (ALLOW, "key", 1)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_the_zygote_opens_the_driver_ctrd_has(tmp_path: Path, version: str) -> None:
    root = (make_v1_root(tmp_path / "cg", unified=True) if version == "v1"
            else make_v2_root(tmp_path / "cg"))
    driver = (V1Driver(root, "ctr/nested") if version == "v1"
              else V2Driver(root, "ctr/nested"))
    name, again_root, parent = warm._driver_arguments(driver)
    again = open_driver(name, Path(again_root), parent)
    assert type(again) is type(driver) and again.root == driver.root
    assert again.parent == driver.parent


def test_warm_pool_is_a_count_from_each_source(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    assert daemon_config({"config_dir": str(config)}, {}).warm_pool == 2
    assert daemon_config({"config_dir": str(config)}, {"CTR_WARM_POOL": "0"}).warm_pool == 0
    assert daemon_config({"config_dir": str(config), "warm_pool": "5"}, {}).warm_pool == 5
    with pytest.raises(DaemonConfigError, match="CTR_WARM_POOL: must be between 0 and 64, got -1"):
        daemon_config({"config_dir": str(config)}, {"CTR_WARM_POOL": "-1"})
    (config / "ctrd.toml").write_text('warm_pool = "many"\n')
    with pytest.raises(DaemonConfigError, match=r"ctrd\.toml.*warm_pool.*expected an integer"):
        daemon_config({"config_dir": str(config)}, {})
