"""``[container] bundle = DIR``: the container from the bundle's config.json, with ctrd's own
settings from the definition, and every key the bundle owns (or ctrd cannot honour) a problem."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from supervisor.config import loader
from supervisor.config.errors import DefinitionError
from supervisor.model.spec import ContainerSpec, NetworkSpec, PortMapping
from tests.unit.test_oci_config import BASE


def bundle(directory: Path, **members: Any) -> Path:
    (directory / "rootfs").mkdir(parents=True)
    (directory / "config.json").write_text(json.dumps({**BASE, **members}))
    return directory


def parse(tmp_path: Path, text: str) -> ContainerSpec:
    return loader.parse_text("echo", textwrap.dedent(text), source=tmp_path / "echo.toml",
                             data_dir=tmp_path / "data").spec


def problems(tmp_path: Path, text: str) -> str:
    with pytest.raises(DefinitionError) as caught:
        parse(tmp_path, text)
    return str(caught.value)


def test_the_container_is_the_bundles_with_ctrds_settings(tmp_path: Path) -> None:
    path = bundle(tmp_path / "echo", hostname="echo")
    spec = parse(tmp_path, f'''
        [container]
        bundle = "{path}"
        autostart = true
        [restart]
        policy = "always"
        stop_timeout = "3s"
        [network]
        mode = "veth"
        ports = ["8080:80"]
        [health]
        command = ["true"]
    ''')
    assert spec.name == "echo" and spec.argv == ("/bin/sh", "-c", "echo hi")
    assert spec.image == str((path / "rootfs").resolve()) and spec.root.in_place
    assert spec.hostname == "echo" and spec.autostart
    assert spec.restart.policy == "always" and spec.stop.timeout == 3.0
    assert spec.network == NetworkSpec("veth", ports=(PortMapping(8080, 80),))
    assert spec.health is not None and spec.health.command == ("true",)
    plain = parse(tmp_path, f'[container]\nbundle = "{path}"\n')
    assert plain.network.mode == "none"  # the bundle's own new network namespace, loopback


def test_what_the_bundle_says_is_not_the_definitions(tmp_path: Path) -> None:
    path = bundle(tmp_path / "echo")
    found = problems(tmp_path, f'''
        [container]
        bundle = "{path}"
        command = ["/bin/true"]
        [resources]
        memory_max = "1G"
    ''')
    assert "container.command: not with bundle: the bundle's config.json says it" in found
    assert "resources: not with [container] bundle" in found


def test_what_ctrd_does_not_do_for_a_bundle(tmp_path: Path) -> None:
    path = bundle(tmp_path / "echo", hooks={"poststart": [{"path": "/bin/true"}]},
                  linux={**BASE["linux"], "cgroupsPath": "/machine/echo"})
    found = problems(tmp_path, f'[container]\nbundle = "{path}"\n')
    assert "hooks are run by ctr-runtime, not by ctrd" in found
    assert "linux.cgroupsPath: ctrd places the cgroups" in found
    host = bundle(tmp_path / "host", linux={"namespaces": [{"type": "mount"}]})
    assert "keeps the host's network or joins one" in problems(tmp_path, f'''
        [container]
        bundle = "{host}"
        [network]
        mode = "veth"
    ''')


def test_a_bad_bundle_is_the_definitions_problem(tmp_path: Path) -> None:
    path = bundle(tmp_path / "echo", process={**BASE["process"], "args": []})
    found = problems(tmp_path, f'[container]\nbundle = "{path}"\n')
    assert f"container.bundle: {path}: process.args: expected a non-empty array" in found
    assert "container.bundle: /nowhere: /nowhere/config.json: No such file" in problems(
        tmp_path, '[container]\nbundle = "/nowhere"\n')
