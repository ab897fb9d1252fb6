"""References, registries.conf, credentials, challenges: how a name becomes places and logins."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from supervisor.images import auth, challenge, reference, registries
from supervisor.images.reference import Reference, ReferenceError
from supervisor.images.registries import ShortNameError


@pytest.mark.parametrize("text, domain, path, tag, digest", [
    ("busybox", "", "busybox", "latest", None),
    ("library/busybox:1.36", "", "library/busybox", "1.36", None),
    ("registry.example.com/team/app:1.4", "registry.example.com", "team/app", "1.4", None),
    ("localhost/app", "localhost", "app", "latest", None),
    ("127.0.0.1:5000/a/b", "127.0.0.1:5000", "a/b", "latest", None),
    ("host:5000/app@sha256:" + "a" * 64, "host:5000", "app", None, "sha256:" + "a" * 64),
    ("host.example/app:v1@sha256:" + "b" * 64, "host.example", "app", "v1", "sha256:" + "b" * 64),
])
def test_references_are_split_as_docker_and_podman_do(
        text: str, domain: str, path: str, tag: str | None, digest: str | None) -> None:
    assert reference.parse(text) == Reference(domain, path, tag, digest)


@pytest.mark.parametrize("text, complaint", [
    ("", "empty"),
    ("Busybox", "lower-case"),
    ("host/app:bad tag", "invalid tag"),
    ("host/app@sha256:abc", "invalid digest"),
    ("host/-app", "invalid repository name"),
    ("host/app:" + "t" * 200, "invalid tag"),
])
def test_bad_references_say_what_is_wrong(text: str, complaint: str) -> None:
    with pytest.raises(ReferenceError, match=complaint):
        reference.parse(text)


def test_a_short_name_on_docker_hub_gets_library() -> None:
    assert str(reference.parse("nginx").qualify("docker.io")) == "docker.io/library/nginx:latest"
    assert str(reference.parse("me/app:2").qualify("quay.io")) == "quay.io/me/app:2"


def _conf(tmp_path: Path, text: str, *dropins: str) -> registries.RegistriesConf:
    main = tmp_path / "registries.conf"
    main.write_text(text)
    files = [main]
    for i, dropin in enumerate(dropins):
        files.append(tmp_path / f"{i}.conf")
        files[-1].write_text(dropin)
    return registries.load(files)


def test_short_name_resolves_through_the_only_search_registry(tmp_path: Path) -> None:
    conf = _conf(tmp_path, 'unqualified-search-registries = ["reg.example:5000"]\n')
    assert conf.candidates(reference.parse("app:1")) == [reference.parse("reg.example:5000/app:1")]


def test_ambiguous_short_name_names_every_registry(tmp_path: Path) -> None:
    conf = _conf(tmp_path, 'unqualified-search-registries = ["a.example", "b.example"]\n')
    with pytest.raises(ShortNameError, match=r"ambiguous.*a\.example, b\.example"):
        conf.candidates(reference.parse("app"))


def test_permissive_mode_tries_each_search_registry_in_order(tmp_path: Path) -> None:
    conf = _conf(tmp_path, 'unqualified-search-registries = ["a.example", "b.example"]\n'
                 'short-name-mode = "permissive"\n')
    assert [c.domain for c in conf.candidates(reference.parse("app"))] == ["a.example",
                                                                          "b.example"]


def test_short_name_without_search_registries_is_an_error_naming_the_file(
        tmp_path: Path) -> None:
    conf = _conf(tmp_path, "")
    with pytest.raises(ShortNameError, match=r"no unqualified-search-registries in .*registries"):
        conf.candidates(reference.parse("app"))


def test_an_alias_wins_over_the_search_registries(tmp_path: Path) -> None:
    conf = _conf(tmp_path, 'unqualified-search-registries = ["a.example", "b.example"]\n'
                 '[aliases]\n"app" = "quay.io/team/app"\n')
    assert conf.candidates(reference.parse("app:3")) == [reference.parse("quay.io/team/app:3")]


def test_dropins_replace_keys_and_registries_of_the_same_prefix(tmp_path: Path) -> None:
    conf = _conf(tmp_path,
                 'unqualified-search-registries = ["a.example"]\n'
                 '[[registry]]\nprefix = "a.example"\nlocation = "a.example"\n',
                 'unqualified-search-registries = ["b.example"]\n'
                 '[[registry]]\nprefix = "a.example"\nlocation = "a.example"\ninsecure = true\n')
    assert conf.search == ("b.example",)
    assert [r.insecure for r in conf.registries] == [True]


def test_mirrors_come_before_the_location_and_prefix_is_rewritten(tmp_path: Path) -> None:
    conf = _conf(tmp_path, '[[registry]]\nprefix = "example.com/team"\n'
                 'location = "real.example/mirror-of-team"\n'
                 '[[registry.mirror]]\nlocation = "127.0.0.1:5000/cache"\ninsecure = true\n')
    sources = conf.sources(reference.parse("example.com/team/app:1"))
    assert [(str(s.ref), s.insecure) for s in sources] == [
        ("127.0.0.1:5000/cache/app:1", True), ("real.example/mirror-of-team/app:1", False)]
    # a prefix matches whole components only
    assert conf.sources(reference.parse("example.com/teams/app"))[0].ref.domain == "example.com"


def test_blocked_registry_is_refused(tmp_path: Path) -> None:
    conf = _conf(tmp_path, '[[registry]]\nlocation = "bad.example"\nblocked = true\n')
    with pytest.raises(PermissionError, match="blocked"):
        conf.sources(reference.parse("bad.example/app"))


@pytest.mark.parametrize("text, complaint", [
    ("unqualified-search-registries = 'a'", "unqualified-search-registries: must be a list"),
    ('[[registry]]\nlocation = "a"\ninsecure = "yes"', r"registry\[0\]\.insecure"),
    ('[[registry]]\nlocation = "a"\nmirrors = []', r"registry\[0\]\.mirrors: unknown key"),
    ('[registries.search]\nregistries = ["a"]', "version 1 format"),
    ('short-name-mode = "loose"', "short-name-mode"),
    ("not toml [", "registries.conf"),
])
def test_bad_registries_conf_names_file_and_key(tmp_path: Path, text: str,
                                                complaint: str) -> None:
    with pytest.raises(registries.RegistriesConfError, match=complaint):
        _conf(tmp_path, text)


def test_containers_registries_conf_replaces_the_system_files(tmp_path: Path) -> None:
    mine = tmp_path / "mine.conf"
    assert registries.files({"CONTAINERS_REGISTRIES_CONF": str(mine)}) == [mine]


def _auth_file(path: Path, entries: dict[str, str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"auths": {
        key: {"auth": base64.b64encode(value.encode()).decode()}
        for key, value in entries.items()}}))
    return path


def test_credentials_are_read_in_podmans_order(tmp_path: Path) -> None:
    home = tmp_path / "home"
    # hosts no real auth file on this machine names
    one, two = "one.ctr-test.invalid", "two.ctr-test.invalid"
    _auth_file(home / ".docker/config.json", {one: "docker:1", two: "docker:2"})
    _auth_file(home / ".config/containers/auth.json", {one: "podman:3"})
    environ = {"HOME": str(home)}
    assert auth.read_paths(None, environ) == [
        Path(f"/run/containers/{os.getuid()}/auth.json"),
        home / ".config/containers/auth.json", home / ".docker/config.json"]
    assert auth.lookup(one, "app", environ=environ) == auth.Credentials("podman", "3")
    assert auth.lookup(two, "", environ=environ) == auth.Credentials("docker", "2")
    assert auth.lookup("none.ctr-test.invalid", "", environ=environ) is None
    # $REGISTRY_AUTH_FILE alone when set
    only = _auth_file(tmp_path / "only.json", {two: "env:4"})
    environ["REGISTRY_AUTH_FILE"] = str(only)
    assert auth.lookup(one, "", environ=environ) is None
    assert auth.lookup(two, "", environ=environ) == auth.Credentials("env", "4")


def test_a_repository_entry_wins_over_the_host_entry(tmp_path: Path) -> None:
    authfile = _auth_file(tmp_path / "auth.json", {"reg.example": "host:1",
                                                   "reg.example/team": "team:2"})
    assert auth.lookup("reg.example", "team/app", authfile) == auth.Credentials("team", "2")
    assert auth.lookup("reg.example", "other/app", authfile) == auth.Credentials("host", "1")


def test_login_writes_a_private_file_and_logout_removes_the_entry(tmp_path: Path) -> None:
    authfile = tmp_path / "dir" / "auth.json"
    _auth_file(authfile, {"keep.example": "k:v"})
    auth.store("reg.example:5000", auth.Credentials("me", "sécret:x"), authfile)
    assert oct(authfile.stat().st_mode & 0o777) == "0o600"
    assert auth.lookup("reg.example:5000", "", authfile) == auth.Credentials("me", "sécret:x")
    assert auth.remove("reg.example:5000", authfile)
    assert not auth.remove("reg.example:5000", authfile)
    assert set(json.loads(authfile.read_text())["auths"]) == {"keep.example"}


def test_a_malformed_auth_entry_is_named(tmp_path: Path) -> None:
    authfile = tmp_path / "auth.json"
    authfile.write_text('{"auths": {"reg.example": {"auth": "!!!"}}}')
    with pytest.raises(auth.AuthFileError, match=r"auths\.reg\.example\.auth"):
        auth.lookup("reg.example", "", authfile)


def test_credentials_never_show_the_password() -> None:
    assert "hunter2" not in repr(auth.Credentials("me", "hunter2"))


def test_challenges_are_parsed_with_quoted_commas() -> None:
    parsed = challenge.parse('Bearer realm="https://auth.example/token",service="reg",'
                             'scope="repository:a/b:pull,push", Basic realm="x, y"')
    assert parsed == [
        challenge.Challenge("bearer", {"realm": "https://auth.example/token", "service": "reg",
                                       "scope": "repository:a/b:pull,push"}),
        challenge.Challenge("basic", {"realm": "x, y"}),
    ]


def test_mirror_by_digest_only_serves_digests_only(tmp_path: Path) -> None:
    conf = _conf(tmp_path, '[[registry]]\nlocation = "real.example"\n'
                 "mirror-by-digest-only = true\n"
                 '[[registry.mirror]]\nlocation = "mirror.example"\n')
    by_tag = conf.sources(reference.parse("real.example/app:1"))
    by_digest = conf.sources(reference.parse("real.example/app@sha256:" + "c" * 64))
    assert [s.ref.domain for s in by_tag] == ["real.example"]
    assert [s.ref.domain for s in by_digest] == ["mirror.example", "real.example"]
