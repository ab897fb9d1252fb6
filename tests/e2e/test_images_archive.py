"""``load`` of podman/skopeo archives and layouts, ``import`` of a rootfs tarball, and the
store verbs (``images``, ``image inspect``, ``rmi``, ``image prune``) as a user runs them."""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from supervisor.images.store import Store
from tests.conftest import REPO
from tests.images_fixtures import Entry, Layout, overlay_files, podman_save, skopeo, tar_bytes


class Ctl:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.data = work / "data"
        self.store = Store(self.data)

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "supervisor.cli.main", "--data-dir",
                               str(self.data), *args], capture_output=True, text=True,
                              timeout=120, cwd=REPO)

    def ok(self, *args: str) -> str:
        result = self.run(*args)
        assert result.returncode == 0, f"ctrctl {' '.join(args)}: {result.stderr}"
        return result.stdout

    def files(self, ref: str) -> dict[str, str]:
        image = self.store.resolve(ref)
        return overlay_files(self.store.root, image.lowerdir(),
                             Path(tempfile.mkdtemp(dir=self.work)))


@pytest.fixture
def ctl(tmp_path: Path) -> Iterator[Ctl]:
    try:
        yield Ctl(tmp_path)
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)


def _rootfs_tarball(path: Path) -> Path:
    data = tar_bytes([Entry("bin/hello", data=b"#!/bin/sh\necho hello\n", mode=0o755),
                      Entry("etc/os-release", data=b"ID=ctr-test\n")])
    path.write_bytes(data)
    return path


def test_load_of_a_podman_save_archive(ctl: Ctl) -> None:
    archive = ctl.work / "saved.tar"
    podman_save(ctl.work / "podman", _rootfs_tarball(ctl.work / "rootfs.tar"),
                "localhost/imported:1", archive)
    shutil.rmtree(ctl.work / "podman")
    assert ctl.ok("load", "-i", str(archive)) == "Loaded image: localhost/imported:1\n"
    assert ctl.files("imported:1") == {"bin/hello": "#!/bin/sh\necho hello\n",
                                       "etc/os-release": "ID=ctr-test\n"}


def _layout(ctl: Ctl) -> Layout:
    layout = Layout(ctl.work / "layout")
    layout.tag("1", layout.image([[Entry("from-layout", data=b"yes\n")]],
                                 config={"Cmd": ["/from-layout"]}))
    return layout


def test_load_of_an_oci_layout_directory_and_an_oci_archive(ctl: Ctl) -> None:
    layout = _layout(ctl)
    # a bare tag as the layout's name: loaded by ID
    loaded = ctl.ok("load", "-i", str(layout.path))
    assert loaded.startswith("Loaded image: sha256:")
    assert ctl.store.resolve(loaded.split()[-1]).config.cmd == ("/from-layout",)
    skopeo("copy", f"oci:{layout.path}:1", f"oci-archive:{ctl.work}/oci.tar:example.com/app:2")
    assert ctl.ok("load", "-i", str(ctl.work / "oci.tar")) == (
        "Loaded image: example.com/app:2\n")
    assert ctl.files("example.com/app:2") == {"from-layout": "yes\n"}


def test_load_of_a_skopeo_docker_archive(ctl: Ctl) -> None:
    layout = _layout(ctl)
    skopeo("copy", f"oci:{layout.path}:1", f"docker-archive:{ctl.work}/docker.tar:app:3")
    assert ctl.ok("load", "-i", str(ctl.work / "docker.tar")) == (
        "Loaded image: docker.io/library/app:3\n")
    assert ctl.files("app:3") == {"from-layout": "yes\n"}


def test_load_refuses_a_tampered_archive_and_keeps_nothing(ctl: Ctl) -> None:
    layout = _layout(ctl)
    for blob in (layout.path / "blobs/sha256").iterdir():
        if blob.stat().st_size > 1000 or blob.read_bytes()[:2] == b"\x1f\x8b":
            data = bytearray(blob.read_bytes())
            data[-20] ^= 0xFF
            blob.write_bytes(bytes(data))
    result = ctl.run("load", "-i", str(layout.path))
    assert result.returncode == 1 and result.stderr.startswith("ctrctl: ")
    assert "layer sha256:" in result.stderr
    assert ctl.store.records() == []
    assert list((ctl.store.root / "layers").iterdir()) == []


def test_load_of_something_else_says_what_it_wanted(ctl: Ctl) -> None:
    junk = ctl.work / "junk.tar"
    with tarfile.open(junk, "w") as tar:
        tar.addfile(tarfile.TarInfo("README"), io.BytesIO(b""))
    result = ctl.run("load", "-i", str(junk))
    assert result.returncode == 1
    assert "neither a docker-archive (manifest.json) nor an OCI layout" in result.stderr


def test_import_list_inspect_rmi_and_prune(ctl: Ctl) -> None:
    tarball = _rootfs_tarball(ctl.work / "rootfs.tar")
    image_id = ctl.ok("import", str(tarball), "mine:1").strip()
    assert ctl.files("localhost/mine:1")["etc/os-release"] == "ID=ctr-test\n"
    listing = json.loads(ctl.ok("images", "-o", "json"))
    assert [(i["id"], i["names"]) for i in listing] == [(image_id, ["localhost/mine:1"])]
    table = ctl.ok("images").splitlines()
    assert table[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert table[1].split()[:3] == ["localhost/mine", "1", image_id[:12]]
    inspected = json.loads(ctl.ok("image", "inspect", "mine:1"))[0]
    assert inspected["Id"] == image_id and inspected["Size"] == len(b"ID=ctr-test\n") + len(
        b"#!/bin/sh\necho hello\n")
    assert inspected["Layers"][0]["MediaType"] == "application/vnd.oci.image.layer.v1.tar"
    assert inspected["Layers"][0]["BlobSize"] == tarball.stat().st_size
    # the same tree gzipped is another image sharing the layer; removing it keeps the layer
    gzipped = ctl.work / "rootfs.tar.gz"
    gzipped.write_bytes(gzip.compress(tarball.read_bytes()))
    second = ctl.ok("import", str(gzipped), "mine:2").strip()
    assert len(os.listdir(ctl.store.root / "layers")) == 1
    assert ctl.ok("rmi", "mine:2") == f"Deleted: {second}\n"
    image = ctl.store.resolve("mine:1")
    assert image.layers[0].path.is_dir()
    ctl.store.hold("web", image)
    refused = ctl.run("rmi", "mine:1")
    assert refused.returncode == 1 and "in use by container(s) web" in refused.stderr
    assert ctl.ok("rmi", "-f", "mine:1") == f"Deleted: {image_id}\n"
    assert image.layers[0].path.is_dir()  # under a container: stays
    ctl.store.release("web")
    ctl.ok("image", "prune")
    assert not image.layers[0].path.exists()
    missing = ctl.run("image", "inspect", "mine:1")
    assert missing.returncode == 1 and "is not in the store" in missing.stderr
