"""An image's config as the defaults of a container (docker's rules), where an image comes from
(a local one wins), the pull policies, and the image keys of a definition."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from supervisor.config import loader
from supervisor.config.errors import DefinitionError
from supervisor.images import effective, imageconfig, locate
from supervisor.images.imageconfig import Healthcheck, ImageConfig
from supervisor.images.store import Store
from supervisor.model import command as commands
from supervisor.model.errors import Invalid
from supervisor.model.health import SHELL
from supervisor.model.signals import SIGKILL, SIGTERM, signal
from supervisor.model.spec import ContainerSpec, HealthSpec, MountSpec, StopSpec

VOLUMES = Path("/var/lib/ctr/containers/web/volumes")
APP = ImageConfig("amd64", "linux", (), entrypoint=("/entry", "-x"), cmd=("serve", "--port=80"))


def merged(config: ImageConfig | None = APP, **definition: Any) -> ContainerSpec:
    return effective.spec(ContainerSpec(name="web", image="app", **definition), config, VOLUMES)


@pytest.mark.parametrize(("definition", "argv"), [
    ({}, ("/entry", "-x", "serve", "--port=80")),
    ({"command": ("debug",)}, ("/entry", "-x", "debug")),
    ({"entrypoint": ("/bin/sh",)}, ("/bin/sh",)),  # the image's Cmd is dropped, as docker does
    ({"entrypoint": ("/bin/sh", "-c"), "command": ("echo hi",)}, ("/bin/sh", "-c", "echo hi")),
    ({"entrypoint": (), "command": ("/bin/true",)}, ("/bin/true",)),
], ids=["image", "command", "entrypoint", "both", "no-entrypoint"])
def test_entrypoint_and_cmd_by_docker_rules(definition: dict[str, Any],
                                            argv: tuple[str, ...]) -> None:
    assert merged(**definition).argv == argv


def test_an_image_with_only_cmd_or_only_entrypoint() -> None:
    only_cmd = ImageConfig("amd64", "linux", (), cmd=("/bin/sh",))
    assert merged(only_cmd).argv == ("/bin/sh",)
    assert merged(only_cmd, command=("/bin/echo", "x")).argv == ("/bin/echo", "x")
    only_entry = ImageConfig("amd64", "linux", (), entrypoint=("/app",))
    assert merged(only_entry).argv == ("/app",)
    assert merged(only_entry, command=("-v",)).argv == ("/app", "-v")


def test_nothing_to_run_is_an_error_naming_the_fix() -> None:
    with pytest.raises(Invalid, match="neither Entrypoint nor Cmd: give the container a command"):
        merged(ImageConfig("amd64", "linux", ()))
    with pytest.raises(Invalid, match="neither Entrypoint nor Cmd"):
        merged(entrypoint=())  # drops the image's Cmd too


def test_an_image_without_config_keeps_the_definition_and_a_shell() -> None:
    spec = merged(None)
    assert spec == ContainerSpec(name="web", image="app")
    assert (spec.argv, spec.effective_user, spec.effective_working_dir) == (
        ("/bin/sh",), "root", "/")
    assert spec.stop.effective_signal == SIGTERM


def test_environment_the_definitions_values_win() -> None:
    config = ImageConfig("amd64", "linux", (), cmd=("x",),
                         env=MappingProxyType({"PATH": "/app/bin", "MODE": "image", "A": "1"}))
    spec = merged(config, environment=(("MODE", "definition"), ("B", "2")))
    assert dict(spec.environment) == {"PATH": "/app/bin", "MODE": "definition", "A": "1",
                                      "B": "2"}


def test_user_working_dir_and_stop_signal_unless_the_definition_sets_them() -> None:
    config = ImageConfig("amd64", "linux", (), cmd=("x",), user="101:101", working_dir="/srv",
                         stop_signal="SIGQUIT")
    spec = merged(config)
    assert (spec.effective_user, spec.effective_working_dir) == ("101:101", "/srv")
    assert spec.stop.effective_signal == signal("SIGQUIT")
    own = merged(config, user="root", working_dir="/", stop=StopSpec(signal=SIGKILL))
    assert (own.effective_user, own.effective_working_dir) == ("root", "/")
    assert own.stop.effective_signal == SIGKILL


def test_bad_image_values_read_as_the_models_errors_with_the_key() -> None:
    with pytest.raises(Invalid, match=r"the image's config\.User: not a user: 'a:b:c'"):
        merged(ImageConfig("amd64", "linux", (), cmd=("x",), user="a:b:c"))
    with pytest.raises(Invalid, match=r"config\.WorkingDir: must be an absolute path"):
        merged(ImageConfig("amd64", "linux", (), cmd=("x",), working_dir="srv"))
    with pytest.raises(Invalid, match=r"config\.Cmd\[0\]: the program must not be empty"):
        merged(ImageConfig("amd64", "linux", (), cmd=("", "x")))


def test_volumes_are_per_container_directories_unless_mounted() -> None:
    config = ImageConfig("amd64", "linux", (), cmd=("x",), volumes=("/var/lib/db", "/data"))
    spec = merged(config)
    assert spec.mounts == (MountSpec("/var/lib/db", str(VOLUMES / "var%2Flib%2Fdb")),
                           MountSpec("/data", str(VOLUMES / "data")))
    own = MountSpec("/data", "/srv/data")
    assert merged(config, mounts=(own,)).mounts == (
        MountSpec("/var/lib/db", str(VOLUMES / "var%2Flib%2Fdb")), own)


def test_healthcheck_from_the_image_unless_the_definition_has_one() -> None:
    config = ImageConfig("amd64", "linux", (), cmd=("x",), healthcheck=Healthcheck(
        ("CMD-SHELL", "wget -q localhost"), interval=10.0, retries=5))
    assert merged(config).health == HealthSpec((*SHELL, "wget -q localhost"), interval=10.0,
                                               retries=5)
    none = HealthSpec(command=())  # [health] command = ["NONE"]
    assert merged(config, health=none).health == none
    off = ImageConfig("amd64", "linux", (), cmd=("x",), healthcheck=Healthcheck(("NONE",)))
    assert merged(off).health is None


def test_labels_and_exposed_ports_are_carried() -> None:
    config = imageconfig.parse(json.dumps({
        "architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []},
        "config": {"Cmd": ["x"], "Labels": {"org.example": "1"},
                   "ExposedPorts": {"80/tcp": {}, "53/udp": {}}}}).encode())
    spec = merged(config)
    assert spec.labels == (("org.example", "1"),) and spec.exposed_ports == ("80/tcp", "53/udp")


def test_image_config_env_and_stop_signal_use_the_models_parsers() -> None:
    def parse(config: dict[str, Any]) -> ImageConfig:
        return imageconfig.parse(json.dumps({"rootfs": {"type": "layers", "diff_ids": []},
                                             "config": config}).encode())
    with pytest.raises(imageconfig.ConfigError, match=r"config\.Env\[0\]: not NAME=VALUE"):
        parse({"Env": ["NOEQUALS"]})
    with pytest.raises(imageconfig.ConfigError, match=r"config\.StopSignal: not a signal"):
        parse({"StopSignal": "SIGNOPE"})
    assert parse({"StopSignal": "quit"}).stop_signal == "SIGQUIT"
    assert parse({"StopSignal": "RTMIN+3"}).stop_signal == "SIGRTMIN+3"


@pytest.mark.parametrize(("text", "expected"), [
    ("/app", ("/app",)), ("", ()), ("[]", ()), ('["/bin/sh", "-c"]', ("/bin/sh", "-c")),
    (["/a", "b"], ("/a", "b")), ([], ()),
])
def test_entrypoint_values(text: Any, expected: tuple[str, ...]) -> None:
    assert commands.entrypoint(text) == expected


def test_a_bad_entrypoint_is_refused() -> None:
    with pytest.raises(Invalid, match="not a JSON array"):
        commands.entrypoint('["/bin/sh", ')
    with pytest.raises(Invalid, match="the program must not be empty"):
        commands.entrypoint(["", "x"])


# -- where an image comes from ---------------------------------------------------------------


@pytest.fixture
def data(tmp_path: Path) -> Path:
    (tmp_path / "images" / "busybox").mkdir(parents=True)
    (tmp_path / "images" / "web.tar.gz").write_bytes(b"")
    return tmp_path


def test_local_images_win_over_a_registry(data: Path) -> None:
    assert locate.locate("busybox", data).kind == "named"
    assert locate.locate("web", data).path == data / "images" / "web.tar.gz"
    assert locate.locate(str(data), data).kind == "path"
    nginx = locate.locate("nginx", data)
    assert nginx.kind == "registry" and str(nginx.reference) == "nginx:latest"
    assert locate.locate("registry.example.com/team/app:1.4", data).kind == "registry"


def test_an_image_of_the_store_is_found_by_its_short_name(data: Path) -> None:
    store = Store(data)
    store._update(lambda records: [*records, _record("registry.example.com/team/app:1.4")])
    assert locate.locate("app:1.4", data).kind == "stored"
    assert locate.locate("registry.example.com/team/app:1.4", data).kind == "stored"
    assert locate.locate("app", data).kind == "registry"  # :latest is another image


def _record(name: str) -> Any:
    from supervisor.images.store import Record
    return Record(digest="sha256:" + "a" * 64, config="sha256:" + "b" * 64, diff_ids=(),
                  names=(name,))


@pytest.mark.parametrize(("policy", "by_hand", "expected"), [
    ("missing", True, "app"), ("always", False, "app"), ("missing", False, "app"),
])
def test_what_is_missing_is_pulled_unless_never(data: Path, policy: Any, by_hand: bool,
                                                expected: str) -> None:
    assert locate.to_pull(locate.locate("app", data), policy, by_hand) == expected


def test_never_pulls_and_says_so(data: Path) -> None:
    with pytest.raises(locate.ImageNotFound,
                       match='not in the image store and its pull policy is "never"'):
        locate.to_pull(locate.locate("app", data), "never", True)


def test_always_pulls_a_stored_image_at_a_start_by_hand_only(data: Path) -> None:
    Store(data)._update(lambda records: [*records, _record("localhost/app:latest")])
    stored = locate.locate("app", data)
    assert locate.to_pull(stored, "always", by_hand=True) == "app"
    assert locate.to_pull(stored, "always", by_hand=False) is None  # a restart by the policy
    assert locate.to_pull(stored, "missing", by_hand=True) is None
    assert locate.to_pull(locate.locate("busybox", data), "always", True) is None


# -- a definition's keys ---------------------------------------------------------------------


def parse(data: Path, text: str) -> ContainerSpec:
    return loader.parse_text("web", textwrap.dedent(text), source=data / "web.toml",
                             data_dir=data).spec


def problems(data: Path, text: str) -> dict[str, str]:
    with pytest.raises(DefinitionError) as caught:
        parse(data, text)
    return {str(p.key): p.reason for p in caught.value.problems}


def test_a_registry_reference_need_not_be_pulled_to_pass_the_check(data: Path) -> None:
    spec = parse(data, '''
        [container]
        image = "registry.example.com/team/app:1.4"
        pull = "always"
        entrypoint = ["/app", "--serve"]
        ''')
    assert (spec.image, spec.pull, spec.entrypoint) == ("registry.example.com/team/app:1.4",
                                                        "always", ("/app", "--serve"))
    assert spec.command is None and spec.user is None and spec.working_dir is None
    assert spec.stop.signal is None  # the image's StopSignal may apply
    assert parse(data, '[container]\nimage = "busybox"\n').pull == "missing"


def test_a_short_name_resolves_through_registries_conf(data: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    reasons = problems(data, '[container]\nimage = "nginx"\n')
    assert reasons["container.image"].startswith(
        "image 'nginx' not found: looked for nginx, nginx.tar, ")
    assert f"in {data / 'images'}, and in the image store {data / 'store'}" in reasons[
        "container.image"]
    assert "no unqualified-search-registries" in reasons["container.image"]
    conf = tmp_path / "registries.conf"
    conf.write_text('unqualified-search-registries = ["registry.example.com"]\n')
    monkeypatch.setenv("CONTAINERS_REGISTRIES_CONF", str(conf))
    assert parse(data, '[container]\nimage = "nginx"\n').image == "nginx"
    conf.write_text('unqualified-search-registries = ["a.example.com", "b.example.com"]\n')
    assert "is ambiguous: it may be on any of a.example.com, b.example.com" in problems(
        data, '[container]\nimage = "nginx"\n')["container.image"]


@pytest.mark.parametrize(("line", "key", "reason"), [
    ('pull = "sometimes"', "container.pull",
     "must be one of 'missing', 'always', 'never', got 'sometimes'"),
    ("entrypoint = 5", "container.entrypoint", "expected a non-empty array of strings"),
    ('entrypoint = ["/bin/sh", 1]', "container.entrypoint[1]", "expected a string"),
    ('image = "Registry.example.com/App"', "container.image",
     "not an image name (letters, digits, '_.-'), an absolute path or a reference"),
])
def test_bad_image_keys(data: Path, line: str, key: str, reason: str) -> None:
    text = f'[container]\nimage = "busybox"\n{line}\n' if not line.startswith("image") else (
        f"[container]\n{line}\n")
    assert reason in problems(data, text)[key]
