"""Pulls from Debian's docker-registry on loopback, of images pushed by skopeo and umoci.

One plain-HTTP registry serves the module (each test pushes images of its own, so the access
log counts only that test's fetches); the TLS, authentication and fault tests start their own.
``ctrctl`` runs as a user would run it, with registries.conf, credentials and certs.d of the
test's own (``CONTAINERS_REGISTRIES_CONF``, ``REGISTRY_AUTH_FILE``, ``CTR_CERTS_D``).
"""

from __future__ import annotations

import json
import os
import pty
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from supervisor.images import pull, registries
from supervisor.images.progress import Progress
from supervisor.images.store import Store
from supervisor.images.transport import TransportError
from tests.conftest import REPO
from tests.images_fixtures import (
    Entry,
    Layout,
    Registry,
    directory,
    make_ca,
    manifest_digest,
    opaque,
    overlay_files,
    push,
    registry,
    skopeo,
    whiteout,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    work = tmp_path_factory.mktemp("registry")
    try:
        with registry(work) as running:
            yield running
    finally:
        shutil.rmtree(work, ignore_errors=True)


class User:
    """ctrctl with a data dir, registries.conf, auth file and certs.d of the test's own."""

    def __init__(self, work: Path, insecure: list[str], search: list[str] | None = None,
                 extra: str = "") -> None:
        self.work = work
        work.mkdir(parents=True, exist_ok=True)
        self.data = work / "data"
        self.conf = work / "registries.conf"
        lines = [f"unqualified-search-registries = {json.dumps(search or [])}",
                 'short-name-mode = "permissive"']
        lines += [f'[[registry]]\nlocation = "{host}"\ninsecure = true' for host in insecure]
        self.conf.write_text("\n".join(lines) + "\n" + extra)
        self.environ = {**os.environ, "CONTAINERS_REGISTRIES_CONF": str(self.conf),
                        "REGISTRY_AUTH_FILE": str(work / "auth.json"),
                        "CTR_CERTS_D": str(work / "certs.d")}
        self.store = Store(self.data)

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "supervisor.cli.main", "--data-dir", str(self.data), *args]

    def ctrctl(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.command(*args), capture_output=True, text=True, timeout=120,
                              cwd=REPO, env=self.environ, input=input)

    def ok(self, *args: str, input: str | None = None) -> str:
        result = self.ctrctl(*args, input=input)
        assert result.returncode == 0, f"ctrctl {' '.join(args)}: {result.stderr}"
        return result.stdout

    def fails(self, *args: str, input: str | None = None) -> str:
        """The one-line error of a failing ctrctl (after what progress it printed)."""
        result = self.ctrctl(*args, input=input)
        assert result.returncode == 1, result.stdout
        error = result.stderr.splitlines()[-1]
        assert error.startswith("ctrctl: "), result.stderr
        return error

    def inspect(self, ref: str) -> dict[str, Any]:
        image: dict[str, Any] = json.loads(self.ok("image", "inspect", ref))[0]
        return image

    def assert_empty_store(self) -> None:
        """Nothing of a failed pull stays: no record, no layer, no link, no work directory."""
        root = self.store.root
        assert self.store.records() == []
        for sub in ("layers", "l", "tmp"):
            assert not (root / sub).exists() or list((root / sub).iterdir()) == [], sub


@pytest.fixture
def user(tmp_path: Path, server: Registry) -> Iterator[User]:
    try:
        yield User(tmp_path, [server.host])
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)


def _layered(tmp_path: Path, *, compression: str = "gzip") -> Layout:
    """Three layers: a base, then a deletion and an opaque directory, then a change."""
    layout = Layout(tmp_path / f"layout-{compression}")
    base = [directory("etc"), Entry("etc/motd", data=b"base\n"), Entry("etc/remove-me"),
            directory("srv/www"), Entry("srv/www/old.html"),
            Entry("bin/su", data=b"#!/bin/sh\n", mode=0o4755)]
    middle = [whiteout("etc/remove-me"), opaque("srv/www"), Entry("srv/www/new.html")]
    top = [Entry("etc/motd", data=b"top\n")]
    layout.tag("1", layout.image([base, middle, top], compression=compression,
                                 config={"Env": ["PATH=/bin"], "WorkingDir": "/srv",
                                         "Cmd": ["/bin/sh"]}))
    return layout


def _tree(user: User, ref: str) -> dict[str, str]:
    """Every file of the image as a container's overlay shows it, with its text."""
    image = user.store.resolve(ref)
    work = Path(tempfile.mkdtemp(dir=user.work))
    return overlay_files(user.store.root, image.lowerdir(), work)


def test_pull_of_a_layered_image(user: User, server: Registry, tmp_path: Path) -> None:
    push(_layered(tmp_path), "1", f"{server.host}/layered/app:1")
    result = user.ctrctl("pull", f"{server.host}/layered/app:1")
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert sum("done" in line for line in lines) == 3, result.stderr  # a line per layer
    image = user.inspect(f"{server.host}/layered/app:1")
    assert result.stdout.strip() == image["Id"]
    assert image["Config"]["Env"] == ["PATH=/bin"] and image["Config"]["WorkingDir"] == "/srv"
    tree = _tree(user, f"{server.host}/layered/app:1")
    assert tree["etc/motd"] == "top\n"
    assert "etc/remove-me" not in tree and "srv/www/old.html" not in tree
    assert "srv/www/new.html" in tree
    su = user.store.resolve(f"{server.host}/layered/app:1").layers[0].path / "bin/su"
    assert su.stat().st_mode & 0o7777 == 0o4755
    # a second pull fetches nothing
    again = user.ctrctl("pull", "-q", f"{server.host}/layered/app:1")
    assert again.returncode == 0 and again.stderr == "" and again.stdout == result.stdout
    for layer in image["Layers"]:
        assert server.blob_fetches(layer["Blob"]) == 1


def test_zstd_layers(user: User, server: Registry, tmp_path: Path) -> None:
    push(_layered(tmp_path, compression="zstd"), "1", f"{server.host}/zstd/app:1")
    user.ok("pull", "-q", f"{server.host}/zstd/app:1")
    image = user.inspect(f"{server.host}/zstd/app:1")
    assert {layer["MediaType"] for layer in image["Layers"]} == {
        "application/vnd.oci.image.layer.v1.tar+zstd"}
    assert _tree(user, f"{server.host}/zstd/app:1")["etc/motd"] == "top\n"


def test_docker_schema_2_manifest(user: User, server: Registry, tmp_path: Path) -> None:
    push(_layered(tmp_path), "1", f"{server.host}/v2s2/app:1", "--format", "v2s2")
    user.ok("pull", "-q", f"{server.host}/v2s2/app:1")
    image = user.inspect(f"{server.host}/v2s2/app:1")
    assert image["Digest"] == manifest_digest(f"{server.host}/v2s2/app:1")
    assert {layer["MediaType"] for layer in image["Layers"]} == {
        "application/vnd.docker.image.rootfs.diff.tar.gzip"}
    assert _tree(user, f"{server.host}/v2s2/app:1")["srv/www/new.html"] == ""


def test_multi_platform_index_picks_the_platform(user: User, server: Registry,
                                                 tmp_path: Path) -> None:
    layout = Layout(tmp_path / "multi")
    amd = layout.image([[Entry("arch", data=b"amd64\n")]], arch="amd64")
    arm = layout.image([[Entry("arch", data=b"arm64\n")]], arch="arm64")
    layout.tag("1", layout.index([amd, arm]))
    push(layout, "1", f"{server.host}/multi/app:1", "--all")
    user.ok("pull", "-q", f"{server.host}/multi/app:1")
    assert _tree(user, f"{server.host}/multi/app:1")["arch"] == "amd64\n"
    user.ok("pull", "-q", "--platform", "linux/arm64", f"{server.host}/multi/app:1")
    assert _tree(user, f"{server.host}/multi/app:1")["arch"] == "arm64\n"
    assert user.inspect(f"{server.host}/multi/app:1")["Index"] == manifest_digest(
        f"{server.host}/multi/app:1")
    error = user.fails("pull", "--platform", "linux/s390x", f"{server.host}/multi/app:1")
    assert "no image for platform linux/s390x" in error and "linux/arm64" in error


def test_image_built_with_umoci(user: User, server: Registry, tmp_path: Path) -> None:
    layout, bundle = tmp_path / "umoci", tmp_path / "bundle"
    umoci = ["umoci", "--log", "error"]

    def run(*args: str) -> None:
        subprocess.run([*umoci, *args], check=True, capture_output=True, timeout=60)

    run("init", "--layout", str(layout))
    run("new", "--image", f"{layout}:1")
    run("unpack", "--image", f"{layout}:1", str(bundle))
    (bundle / "rootfs/etc").mkdir()
    (bundle / "rootfs/etc/keep").write_text("kept\n")
    (bundle / "rootfs/etc/drop").write_text("dropped\n")
    os.link(bundle / "rootfs/etc/keep", bundle / "rootfs/etc/keep-link")
    run("repack", "--image", f"{layout}:1", str(bundle))
    (bundle / "rootfs/etc/drop").unlink()
    run("repack", "--image", f"{layout}:1", str(bundle))
    run("config", "--image", f"{layout}:1", "--config.entrypoint", "/bin/app",
        "--config.user", "1000")
    shutil.rmtree(bundle)
    skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:1",
           f"docker://{server.host}/umoci/app:1")
    user.ok("pull", "-q", f"{server.host}/umoci/app:1")
    tree = _tree(user, f"{server.host}/umoci/app:1")
    assert tree["etc/keep"] == "kept\n" and tree["etc/keep-link"] == "kept\n"
    assert "etc/drop" not in tree
    image = user.store.resolve(f"{server.host}/umoci/app:1")
    assert image.config.entrypoint == ("/bin/app",) and image.config.user == "1000"
    first = next(layer.path for layer in image.layers if (layer.path / "etc/keep").exists())
    assert (first / "etc/keep").stat().st_ino == (first / "etc/keep-link").stat().st_ino


def test_unknown_tag_is_a_clear_404(user: User, server: Registry) -> None:
    error = user.fails("pull", f"{server.host}/layered/app:nope")
    assert f"{server.host}/layered/app:nope: 404 not found: manifest unknown" in error
    user.assert_empty_store()


def test_short_names_go_through_the_search_registries(user: User, server: Registry,
                                                      tmp_path: Path) -> None:
    layout = Layout(tmp_path / "short")
    layout.tag("1", layout.image([[Entry("short", data=b"yes")]]))
    push(layout, "1", f"{server.host}/team/short:1")
    searching = User(tmp_path / "searching", [server.host], ["nowhere.invalid", server.host])
    searching.ok("pull", "-q", "team/short:1")
    assert searching.store.records()[0].names == (f"{server.host}/team/short:1",)
    assert searching.store.lookup("team/short:1").names == (f"{server.host}/team/short:1",)
    error = searching.fails("pull", "team/missing:1")
    assert "nowhere.invalid" in error and f"{server.host}/team/missing:1: 404" in error


def test_a_mirror_serves_a_registry_that_does_not_exist(user: User, server: Registry,
                                                        tmp_path: Path) -> None:
    layout = Layout(tmp_path / "mirrored")
    layout.tag("1", layout.image([[Entry("mirrored", data=b"yes")]]))
    push(layout, "1", f"{server.host}/cache/team/app:1")
    mirrored = User(tmp_path / "mirrored-user", [], extra=(
        '[[registry]]\nprefix = "registry.invalid/team"\nlocation = "registry.invalid/team"\n'
        f'[[registry.mirror]]\nlocation = "{server.host}/cache/team"\ninsecure = true\n'))
    mirrored.ok("pull", "-q", "registry.invalid/team/app:1")
    assert mirrored.store.lookup("registry.invalid/team/app:1").diff_ids
    blocked = User(tmp_path / "blocked-user", [], extra=(
        f'[[registry]]\nlocation = "{server.host}"\nblocked = true\n'))
    assert "is blocked" in blocked.fails("pull", f"{server.host}/cache/team/app:1")


def test_corrupt_blob_on_the_registry_is_refused(user: User, server: Registry,
                                                 tmp_path: Path) -> None:
    layout = Layout(tmp_path / "corrupt")
    descriptor = layout.image([[Entry("payload", data=os.urandom(200_000))]])
    layout.tag("1", descriptor)
    push(layout, "1", f"{server.host}/corrupt/app:1")
    blob = json.loads((layout.path / "blobs/sha256" / descriptor["digest"][7:]).read_bytes())
    data = server.blob_file("corrupt/app", blob["layers"][0]["digest"])
    content = bytearray(data.read_bytes())
    content[len(content) // 2] ^= 0xFF
    data.write_bytes(bytes(content))
    error = user.fails("pull", f"{server.host}/corrupt/app:1")
    assert "layer sha256:" in error and ("expected" in error or "not a valid layer" in error)
    user.assert_empty_store()


def test_concurrent_pulls_download_each_layer_once(user: User, server: Registry,
                                                   tmp_path: Path) -> None:
    layout = Layout(tmp_path / "concurrent")
    layout.tag("1", layout.image([[Entry(f"f{i}", data=os.urandom(2_000_000))]
                                  for i in range(3)]))
    push(layout, "1", f"{server.host}/concurrent/app:1")
    others = [User(tmp_path / f"other{i}", [server.host]) for i in range(3)]
    for other in others:  # one store, many processes
        other.data = user.data
    pulls = [subprocess.Popen(o.command("pull", "-q", f"{server.host}/concurrent/app:1"),
                              env=o.environ, cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for o in others]
    outputs = [p.communicate(timeout=120) for p in pulls]
    assert [p.returncode for p in pulls] == [0, 0, 0], outputs
    assert len({out for out, _ in outputs}) == 1
    image = user.inspect(f"{server.host}/concurrent/app:1")
    assert [server.blob_fetches(layer["Blob"]) for layer in image["Layers"]] == [1, 1, 1]


def _big_image(tmp_path: Path, server: Registry, name: str) -> None:
    layout = Layout(tmp_path / name)
    layout.tag("1", layout.image([[Entry("big", data=os.urandom(48 << 20))]],
                                 compression="none"))
    push(layout, "1", f"{server.host}/{name}:1")


def _options(server: Registry, retries: int) -> pull.PullOptions:
    conf = registries.RegistriesConf(
        registries=(registries.Registry(server.host, server.host, insecure=True),))
    return pull.PullOptions(registries=conf, retries=retries, backoff=0.2)


def test_registry_restarted_mid_pull_is_resumed_with_range(tmp_path: Path) -> None:
    with registry(tmp_path / "registry") as server:
        _big_image(tmp_path, server, "big")
        store = Store(tmp_path / "data")
        restarted = threading.Event()

        def progress(event: Progress) -> None:
            if event.state == "downloading" and event.done > 0 and not restarted.is_set():
                restarted.set()
                server.stop(signal.SIGKILL)
                server.start()

        result = pull.pull(f"{server.host}/big:1", store, _options(server, 5), progress)
        assert restarted.is_set() and result.resumes >= 1
        assert '" 206 ' in server.log.read_text()  # the registry answered a Range request
        assert (result.image.layers[0].path / "big").stat().st_size == 48 << 20
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_registry_gone_mid_pull_is_a_clean_error(tmp_path: Path) -> None:
    with registry(tmp_path / "registry") as server:
        _big_image(tmp_path, server, "gone")
        user = User(tmp_path / "user", [server.host])

        def progress(event: Progress) -> None:
            if event.state == "downloading":
                server.stop(signal.SIGKILL)

        with pytest.raises(TransportError, match=r"interrupted at byte \d+ of 50"):
            pull.pull(f"{server.host}/gone:1", user.store, _options(server, 1), progress)
        user.assert_empty_store()
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_tls_registry_with_basic_auth(tmp_path: Path) -> None:
    tls = make_ca(tmp_path / "ca")
    with registry(tmp_path / "registry", tls=tls, users={"alice": "s3cret"}) as server:
        layout = _layered(tmp_path)
        push(layout, "1", f"{server.host}/private/app:1", "--dest-creds", "alice:s3cret")
        user = User(tmp_path / "user", [])
        # without the CA: TLS refused, saying where the CA goes
        assert "certs.d" in user.fails("login", server.host, "-u", "alice", "--password-stdin",
                                       input="s3cret\n")
        (user.work / "certs.d" / server.host).mkdir(parents=True)
        shutil.copy(tls.ca, user.work / "certs.d" / server.host / "ca.crt")
        assert "authentication required" in user.fails("pull", f"{server.host}/private/app:1")
        wrong = user.ctrctl("login", server.host, "-u", "alice", "--password-stdin",
                            input="wrong\n")
        assert wrong.returncode == 1 and "401 unauthorized" in wrong.stderr
        assert "wrong user name or password" in wrong.stderr
        assert user.ok("login", server.host, "-u", "alice", "--password-stdin",
                       input="s3cret\n") == "Login Succeeded!\n"
        assert server.host in json.loads((user.work / "auth.json").read_text())["auths"]
        user.ok("pull", "-q", f"{server.host}/private/app:1")
        assert _tree(user, f"{server.host}/private/app:1")["etc/motd"] == "top\n"
        user.ok("logout", server.host)
        assert "not logged into" in user.fails("logout", server.host)
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_progress_bars_on_a_terminal(user: User, server: Registry, tmp_path: Path) -> None:
    layout = Layout(tmp_path / "bars")
    layout.tag("1", layout.image([[Entry("blob", data=os.urandom(3 << 20))]],
                                 compression="none"))
    push(layout, "1", f"{server.host}/bars/app:1")
    primary, secondary = pty.openpty()
    try:
        proc = subprocess.Popen(user.command("pull", f"{server.host}/bars/app:1"),
                                env=user.environ, cwd=REPO, stdout=subprocess.PIPE,
                                stderr=secondary)
        os.close(secondary)
        secondary = -1
        shown = b""
        while chunk := _read(primary):
            shown += chunk
        assert proc.wait(timeout=60) == 0
    finally:
        os.close(primary)
        if secondary >= 0:
            os.close(secondary)
    text = shown.decode()
    assert "\x1b[2K" in text and "MiB/s" in text and "3.0 MiB" in text, text


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except OSError:  # EIO: the other side closed
        return b""
