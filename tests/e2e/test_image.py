"""Images: the busybox builder, and resolving an ``image =`` setting to a directory or fs image."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from supervisor.runtime.image import Image, ImageError, ImageNotFound, resolve
from tests.conftest import REPO

BUILDER = REPO / "rootfs" / "build-busybox"


def _build(data: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BUILDER)], capture_output=True, text=True,
                          env={**os.environ, "DATA_DIR": str(data), **env})


def _tree(root: Path) -> list[tuple[str, int, int, str]]:
    """What a user would diff: every path with its mode, mtime and link target or size."""
    return sorted(
        (str(p.relative_to(root)), p.lstat().st_mode, p.lstat().st_mtime_ns,
         os.readlink(p) if p.is_symlink() else str(p.lstat().st_size))
        for p in root.rglob("*")
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("data")
    result = _build(data)
    assert result.returncode == 0, result.stderr
    return data / "images" / "busybox"


def test_busybox_image_runs_its_shell_and_applets(built: Path) -> None:
    echo = subprocess.run([str(built / "bin/busybox"), "echo", "hi"], capture_output=True,
                          text=True, check=True)
    assert echo.stdout == "hi\n"
    sh = subprocess.run([str(built / "bin/sh"), "-c", "echo $((6 * 7))"], capture_output=True,
                        text=True, check=True)
    assert sh.stdout == "42\n"


def test_every_applet_has_a_link_resolving_inside_the_image(built: Path) -> None:
    applets = subprocess.run([str(built / "bin/busybox"), "--list-full"], capture_output=True,
                             text=True, check=True).stdout.split()
    assert {"bin/sh", "bin/ls", "usr/bin/env", "sbin/ip"} <= set(applets)
    busybox = built / "bin" / "busybox"
    for applet in applets:
        link = built / applet
        if applet != "bin/busybox":
            assert link.is_symlink() and not os.readlink(link).startswith("/"), applet
        assert link.resolve() == busybox, applet


def test_busybox_image_has_users_and_directories(built: Path) -> None:
    passwd = (built / "etc/passwd").read_text().splitlines()
    assert passwd[0].startswith("root:x:0:0:")
    assert any(line.startswith("nobody:x:65534:65534:") for line in passwd)
    assert any(line.startswith("ctr:x:1000:1000:") for line in passwd)
    assert {line.split(":")[0] for line in (built / "etc/group").read_text().splitlines()} >= {
        "root", "nogroup", "ctr"}
    assert not (built / "etc/hostname").exists()
    for d in ("proc", "sys", "dev", "run", "root", "home", "var/tmp", "etc", "tmp"):
        assert (built / d).is_dir(), d
    assert stat.S_IMODE((built / "tmp").stat().st_mode) == 0o1777
    assert stat.S_IMODE((built / "var/tmp").stat().st_mode) == 0o1777
    if os.geteuid() == 0:
        assert (built / "bin/busybox").stat().st_uid == 0
        assert (built / "home/ctr").stat().st_uid == 1000


def test_rebuild_replaces_the_image_identically(tmp_path: Path) -> None:
    assert _build(tmp_path).returncode == 0
    image = tmp_path / "images" / "busybox"
    first = _tree(image)
    (image / "etc" / "stray").write_text("from a container")
    result = _build(tmp_path)
    assert result.returncode == 0, result.stderr
    assert not (image / "etc" / "stray").exists()
    assert _tree(image) == first, "two builds must give the same tree"
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == [".busybox.lock", "busybox"]


def test_builder_refuses_a_dynamically_linked_busybox(tmp_path: Path) -> None:
    result = _build(tmp_path, BUSYBOX="/bin/ls")
    assert result.returncode != 0
    assert "busybox-static" in result.stderr and "dynamically linked" in result.stderr
    assert not (tmp_path / "images" / "busybox").exists()


@pytest.fixture
def data(tmp_path: Path, busybox_image: Path) -> Path:
    """A data dir with the shared busybox image under its name."""
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "busybox").symlink_to(busybox_image)
    return tmp_path


def _tar_of(tree: Path, archive: Path) -> Path:
    subprocess.run(["tar", "-C", str(tree), "-czf", str(archive), "."], check=True)
    return archive


def _ext4_of(tree: Path, image: Path) -> Path:
    subprocess.run(["mkfs.ext4", "-q", "-d", str(tree), str(image), "16M"], check=True)
    return image


def test_name_resolves_to_the_image_directory(data: Path) -> None:
    assert resolve("busybox", data) == Image("busybox", data / "images" / "busybox")
    assert resolve("busybox", data).is_directory


def test_named_tarball_is_unpacked_once_into_the_cache(data: Path, busybox_image: Path) -> None:
    _tar_of(busybox_image, data / "images" / "web.tar.gz")
    image = resolve("web", data)
    assert image.is_directory and image.path.parent == data / "cache"
    sh = subprocess.run([str(image.path / "bin/sh"), "-c", "echo ok"], capture_output=True,
                        text=True, check=True)
    assert sh.stdout == "ok\n"
    assert stat.S_IMODE((image.path / "tmp").stat().st_mode) == 0o1777
    assert resolve("web", data) == image


def test_named_filesystem_image_is_to_be_loop_mounted(data: Path, busybox_image: Path) -> None:
    path = _ext4_of(busybox_image, data / "images" / "small.img")
    assert resolve("small", data) == Image("small", path, "ext4")
    assert not resolve("small", data).is_directory


def test_a_directory_wins_over_a_tarball_of_the_same_name(data: Path, tmp_path: Path) -> None:
    (data / "images" / "busybox.tar").write_bytes(b"not even a tarball")
    assert resolve("busybox", data).path == data / "images" / "busybox"


def test_paths_to_a_directory_a_tarball_and_an_image_file(data: Path, tmp_path: Path,
                                                          busybox_image: Path) -> None:
    assert resolve(str(busybox_image), data) == Image(str(busybox_image), busybox_image)

    site = tmp_path / "potato.tar"
    with tarfile.open(site, "w") as tar:
        info = tarfile.TarInfo("potato/potato.html")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"tuber"))
    unpacked = resolve(str(site), data)
    assert (unpacked.path / "potato.html").read_text() == "tuber"

    ext4 = _ext4_of(busybox_image, tmp_path / "root.ext4")
    assert resolve(str(ext4), data).fstype == "ext4"


def test_missing_name_says_what_was_looked_for(data: Path) -> None:
    with pytest.raises(ImageNotFound) as missing:
        resolve("nginx", data)
    message = str(missing.value)
    assert "'nginx'" in message and str(data / "images") in message
    assert "nginx.tar.gz" in message and "nginx.img" in message


def test_missing_path_is_image_not_found(data: Path) -> None:
    with pytest.raises(ImageNotFound, match="does not exist"):
        resolve(str(data / "nope" / "rootfs"), data)


@pytest.mark.parametrize("ref", ["..", ".busybox.lock", "", "a b"])
def test_names_cannot_escape_the_images_directory(data: Path, ref: str) -> None:
    with pytest.raises(ImageError, match="not an image name"):
        resolve(ref, data)


def test_unrecognised_file_is_an_image_error(data: Path) -> None:
    (data / "images" / "notes.img").write_text("just some text\n")
    with pytest.raises(ImageError, match="not a directory, a tarball or a file-system image"):
        resolve("notes", data)


def test_unsafe_tarball_is_an_image_error_naming_the_member(data: Path) -> None:
    with tarfile.open(data / "images" / "evil.tar", "w") as tar:
        tar.addfile(tarfile.TarInfo("../../etc/evil"), io.BytesIO())
    with pytest.raises(ImageError, match=r"'\.\./\.\./etc/evil'"):
        resolve("evil", data)
    assert not [p for p in (data / "cache").iterdir() if p.is_dir()], "no tree, not even partial"
