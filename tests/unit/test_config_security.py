"""``[security]`` and ``init``: each key read by the model's parsers, every bad value named, and
the same parsers behind ``ctrctl run --security-opt/--cap-add/--cap-drop``."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from supervisor.config import loader
from supervisor.config.errors import DefinitionError
from supervisor.model import capabilities
from supervisor.model.errors import Invalid
from supervisor.model.seccomp import DEFAULT
from supervisor.model.security import security_from_json, security_json, security_opt
from supervisor.model.spec import ContainerSpec, SecuritySpec

BASE = '[container]\nimage = "busybox"\n'


@pytest.fixture
def data(tmp_path: Path) -> Path:
    (tmp_path / "data" / "images" / "busybox").mkdir(parents=True)
    return tmp_path / "data"


def parse(data: Path, text: str) -> ContainerSpec:
    return loader.parse_text("web", textwrap.dedent(text), source=data.parent / "web.toml",
                             data_dir=data).spec


def test_defaults_are_dockers(data: Path) -> None:
    spec = parse(data, BASE)
    assert spec.security == SecuritySpec()
    assert spec.security.seccomp == "default" and spec.security.no_new_privileges
    assert spec.init is False


def test_every_key(data: Path, tmp_path: Path) -> None:
    profile = tmp_path / "profile.json"
    profile.write_text('{"defaultAction": "SCMP_ACT_ALLOW"}')
    spec = parse(data, BASE + f"""init = true
[security]
seccomp = "{profile}"
capabilities_add = ["net_admin", "CAP_SYS_PTRACE"]
capabilities_drop = ["ALL"]
no_new_privileges = false
read_only_paths = ["/srv/data"]
masked_paths = ["/etc/secret/../secret"]
""")
    assert spec.init is True
    assert spec.security == SecuritySpec(
        seccomp=str(profile), capabilities_add=("CAP_NET_ADMIN", "CAP_SYS_PTRACE"),
        capabilities_drop=("ALL",), no_new_privileges=False, read_only_paths=("/srv/data",),
        masked_paths=("/etc/secret",))


@pytest.mark.parametrize(("extra", "key", "reason"), [
    ('seccomp = "strict"', "security.seccomp", "not a seccomp profile: 'strict'"),
    ('seccomp = "/nope.json"', "security.seccomp", "/nope.json"),
    ('capabilities_add = ["SYS_FOO"]', "security.capabilities_add[0]",
     "not a capability: 'SYS_FOO'"),
    ('capabilities_drop = "ALL"', "security.capabilities_drop",
     "expected an array of capabilities"),
    ("no_new_privileges = 0", "security.no_new_privileges", "expected true or false"),
    ('masked_paths = ["proc/kcore"]', "security.masked_paths[0]", "must be an absolute path"),
    ('apparmor = "docker-default"', "security.apparmor", "unknown key"),
])
def test_a_bad_value_is_named(data: Path, extra: str, key: str, reason: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        parse(data, BASE + "[security]\n" + extra + "\n")
    assert caught.value.key == key and reason in caught.value.reason, str(caught.value)


def test_a_profile_that_is_not_json_names_the_file(data: Path, tmp_path: Path) -> None:
    profile = tmp_path / "broken.json"
    profile.write_text("{not json")
    with pytest.raises(DefinitionError, match=f"{profile}: not JSON"):
        parse(data, BASE + f'[security]\nseccomp = "{profile}"\n')


def test_the_capability_set_is_dockers_arithmetic() -> None:
    net_admin = 1 << capabilities.CAPABILITIES["CAP_NET_ADMIN"]
    chown = 1 << capabilities.CAPABILITIES["CAP_CHOWN"]
    assert capabilities.container_set((), ()) == capabilities.DEFAULT_MASK
    assert capabilities.container_set(("CAP_NET_ADMIN",), ("CAP_CHOWN",)) == (
        capabilities.DEFAULT_MASK | net_admin) & ~chown
    assert capabilities.container_set(("CAP_NET_ADMIN",), ("ALL",)) == net_admin
    assert capabilities.container_set(("ALL",), ("CAP_CHOWN",)) == capabilities.EVERY & ~chown


@pytest.mark.parametrize(("text", "parsed"), [
    ("seccomp=unconfined", ("seccomp", "unconfined")),
    ("no-new-privileges", ("no-new-privileges", "true")),
    ("no-new-privileges=false", ("no-new-privileges", "false")),
])
def test_security_opt_as_docker_spells_it(text: str, parsed: tuple[str, str]) -> None:
    assert security_opt(text) == parsed


@pytest.mark.parametrize("text", ["apparmor=unconfined", "seccomp", "no-new-privileges=maybe",
                                  "seccomp=relative.json"])
def test_a_security_opt_ctr_cannot_honour_is_refused(text: str) -> None:
    with pytest.raises(Invalid):
        security_opt(text)


def test_what_ctrctl_exec_is_told_reads_back_the_same() -> None:
    security = SecuritySpec(capabilities_add=("CAP_NET_ADMIN",), no_new_privileges=False,
                            masked_paths=("/x",))
    assert security_from_json(json.loads(json.dumps(security_json(security)))) == security
    assert security_json(security)["capabilities_add"] == ["CAP_NET_ADMIN"]  # JSON's types


def test_an_inline_profile_is_not_dropped_on_the_way_to_ctrctl_exec() -> None:
    with pytest.raises(ValueError, match="inline seccomp profile"):
        security_json(SecuritySpec(seccomp_profile=DEFAULT))
