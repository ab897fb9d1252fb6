"""The course graders' JSON configurations -> the container spec (their routes and verbs are
tested against a real ctrd in tests/e2e/test_graders.py)."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from supervisor.graders import configuration as graders
from supervisor.model import defaults
from supervisor.model.signals import SIGKILL

EXAMPLE = {
    "name": "sensiblename", "major": "1", "minor": "01", "base_image": "basefs.tar.gz",
    "mounts": ["webserver.tar /webserver/ READ", "homedir.tar /webserver/home READWRITE"],
    "startup_script": "/webserver/tiny.sh", "startup_owner": "root",
    "startup_env": "PORT=8080;LD_LIBRARY_PATH=${LD_LIBRARY_PATH}:/var/lib64",
}


def test_example_configuration(tmp_path: Path) -> None:
    text = json.dumps(EXAMPLE)
    config = graders.parse(text, tmp_path)
    assert (config.name, config.major, config.minor) == ("sensiblename", "1", "01")
    assert config.key == "sensiblename-1-01" and config.filename == "sensiblename-1-01.cfg"
    assert config.text == text
    spec = config.spec
    assert spec.name == "sensiblename-1-01"
    assert spec.image == str(tmp_path / "images" / "basefs.tar.gz")
    assert [(m.source, m.target, m.read_only) for m in spec.mounts] == [
        (str(tmp_path / "images" / "webserver.tar"), "/webserver", True),
        (str(tmp_path / "images" / "homedir.tar"), "/webserver/home", False),
    ]
    assert spec.command == ("/bin/sh", "/webserver/tiny.sh") and spec.user == "root"
    assert spec.environment == (("PORT", "8080"), ("LD_LIBRARY_PATH", ":/var/lib64"))
    assert spec.network.mode == "host" and not spec.namespaces.joined()
    assert spec.restart.policy == "no" and spec.stop.signal == SIGKILL


def test_startup_env_entries_and_expansion() -> None:
    env = graders.environment(" A=1 ;; B = ${A}2 ;P=${PATH}:/opt;U=${UNSET}x; L=$A;")
    assert env == (("A", "1"), ("B", "12"), ("P", f"{defaults.PATH}:/opt"), ("U", "x"),
                   ("L", "$A"))


@pytest.mark.parametrize("mode, read_only", [("READ", True), ("ro", True), ("Rw", False),
                                             ("readWrite", False)])
def test_mount_modes_in_any_case(tmp_path: Path, mode: str, read_only: bool) -> None:
    body = {**EXAMPLE, "mounts": [f"/srv/x.tar /x {mode}"]}
    (mount,) = graders.parse(json.dumps(body), tmp_path).spec.mounts
    assert (mount.source, mount.target, mount.read_only) == ("/srv/x.tar", "/x", read_only)


def test_defaults_and_numbers(tmp_path: Path) -> None:
    body = {"name": "n", "major": 2, "minor": 0, "base_image": "/srv/base.tar", "extra": 1}
    config = graders.parse(json.dumps(body), tmp_path)
    assert (config.key, config.major, config.minor) == ("n-2-0", "2", "0")
    assert config.spec.image == "/srv/base.tar" and config.spec.mounts == ()
    assert config.spec.command == ("/bin/sh",) and config.spec.user == "root"


@pytest.mark.parametrize("change, reason", [
    ({"major": None}, "major"),
    ({"name": ["x"]}, "name"),
    ({"name": "a/b"}, "name, major, minor: invalid container name"),
    ({"name": "a b"}, "name, major, minor: invalid container name"),  # found by the fuzz
    ({"name": "n" * 54}, "name, major, minor: 'n+-1-01' is longer than"),
    ({"base_image": "../../etc/base.tar"}, "leaves the image directory"),
    ({"mounts": "x.tar /x READ"}, "mounts"),
    ({"mounts": ["x.tar /x"]}, "mounts[0]"),
    ({"mounts": ["x.tar x READ"]}, "absolute path"),
    ({"mounts": ["x.tar /x WRITE"]}, "READ, READWRITE, RO or RW"),
    ({"startup_env": "PORT"}, "not NAME=VALUE"),
    ({"startup_owner": "r oot"}, "startup_owner"),
])
def test_unusable_configurations_say_why(tmp_path: Path, change: dict[str, Any],
                                         reason: str) -> None:
    body = {key: value for key, value in {**EXAMPLE, **change}.items() if value is not None}
    with pytest.raises(ValueError, match=reason.replace("[", r"\[")):
        graders.parse(json.dumps(body), tmp_path)


@pytest.mark.parametrize("text", ["not json", "[1]", json.dumps({"name": "x", "major": "1"})])
def test_not_a_configuration(tmp_path: Path, text: str) -> None:
    with pytest.raises(ValueError):
        graders.parse(text, tmp_path)




def test_an_instance_starts_only_from_tarballs(tmp_path: Path) -> None:
    """Its routes need no token on TCP: a host directory must never be bound into an instance."""
    images = tmp_path / "images"
    images.mkdir()
    with tarfile.open(images / "basefs.tar.gz", "w:gz") as tar:
        tar.add(images, arcname="root")
    (images / "notes.txt").write_text("not a tarball\n")
    good = {**EXAMPLE, "mounts": ["basefs.tar.gz /webserver READ"]}
    graders.check_tarballs(graders.parse(json.dumps(good), tmp_path).spec)
    for config, reason in [
        ({**EXAMPLE, "base_image": "/"}, "base_image: / is not a tarball"),
        ({**good, "mounts": ["/ /host READWRITE"]}, "mounts[0]: / is not a tarball"),
        ({**good, "mounts": ["notes.txt /x READ"]}, f"mounts[0]: {images}/notes.txt is not a"),
        ({**good, "mounts": ["/dev/null /x READ"]}, "mounts[0]: /dev/null is not a tarball"),
        ({**EXAMPLE, "base_image": "gone.tar"}, f"base_image: {images}/gone.tar does not exist"),
    ]:
        with pytest.raises(ValueError) as caught:
            graders.check_tarballs(graders.parse(json.dumps(config), tmp_path).spec)
        assert str(caught.value).startswith(reason)
