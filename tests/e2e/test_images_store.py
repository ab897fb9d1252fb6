"""Layers unpacked as overlayfs wants them, the store's records, holds and garbage collection.

What a container would see is checked through a real overlay of the layer directories, mounted
in a private mount namespace of the test's own (``unshare -m``: a test fixture, not ctr).
"""

from __future__ import annotations

import io
import json
import os
import stat
import tarfile
import threading
from pathlib import Path

import pytest

from supervisor.images import layers, manifest
from supervisor.images.digest import DigestError, VerifyingReader
from supervisor.images.layers import LayerError
from supervisor.images.store import ImageInUseError, ImageUnknownError, Store, StoredImage
from tests.images_fixtures import (
    Entry,
    compress,
    directory,
    hardlink,
    opaque,
    overlay_run,
    sha256,
    symlink,
    tar_bytes,
    whiteout,
)


def _add(store: Store, entries: list[Entry], compression: str = "gzip") -> str:
    """A layer of ``entries`` in ``store``; returns its diff id."""
    tar = tar_bytes(entries)
    blob = compress(tar, compression)
    with store.adding():
        store.add_layer(sha256(tar), lambda dest: layers.unpack(
            VerifyingReader(io.BytesIO(blob), sha256(blob), len(blob)), dest, "test layer"))
    return sha256(tar)


def _image(store: Store, name: str | None, *stack: list[Entry],
           config: dict[str, object] | None = None) -> StoredImage:
    diff_ids = [_add(store, entries) for entries in stack]
    config_data = json.dumps({"architecture": "amd64", "os": "linux", "config": config or {},
                              "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    document = {"schemaVersion": 2, "mediaType": manifest.OCI_MANIFEST,
                "config": {"mediaType": manifest.OCI_CONFIG, "digest": sha256(config_data),
                           "size": len(config_data)},
                "layers": [{"mediaType": layers.TAR, "digest": d, "size": 1} for d in diff_ids]}
    with store.adding():
        record = store.add_image(name, json.dumps(document).encode(), config_data)
    return store.image(record)


def _overlay(store: Store, image: StoredImage, tmp_path: Path, script: str) -> str:
    return overlay_run(store.root, image.lowerdir(), tmp_path / "overlay", script)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "data")


def test_an_overlay_of_the_layers_shows_what_the_image_means(store: Store,
                                                             tmp_path: Path) -> None:
    image = _image(
        store, "localhost/app:1",
        [directory("etc"), Entry("etc/gone", data=b"old"), Entry("etc/kept", data=b"kept"),
         directory("var/cache"), Entry("var/cache/stale", data=b"stale"),
         Entry("bin/tool", data=b"#!/bin/sh\n", mode=0o4755, uid=0, gid=0),
         Entry("home/u/own", data=b"u", uid=1000, gid=1000, mode=0o600)],
        [whiteout("etc/gone"), opaque("var/cache"), Entry("var/cache/fresh", data=b"fresh"),
         Entry("data/file", data=b"linked", mtime=1_500_000_000), hardlink("data/link",
                                                                             "data/file"),
         symlink("data/abs", "/etc/kept"), Entry("data/x", data=b"x",
                                                 xattrs={"user.note": "hello"})],
    )
    out = _overlay(store, image, tmp_path,
                   "ls etc; ls var/cache; "
                   "stat -c '%n %a %u:%g %h %Y' bin/tool home/u/own data/file; readlink data/abs; "
                   "python3 -c 'import os; print(os.getxattr(\"data/x\", \"user.note\").decode())'")
    lines = out.splitlines()
    assert lines[:3] == ["kept", "fresh", "bin/tool 4755 0:0 1 1600000000"]
    assert lines[3:5] == ["home/u/own 600 1000:1000 1 1600000000",
                          "data/file 644 0:0 2 1500000000"]
    assert lines[5:] == ["/etc/kept", "hello"]


def test_whiteouts_become_overlay_whiteouts_in_the_layer_directory(store: Store) -> None:
    image = _image(store, None, [Entry("a/keep", data=b"k")],
                   [whiteout("a/gone"), opaque("a"), Entry("a/new", data=b"n")])
    top = image.layers[1].path
    st = os.lstat(top / "a/gone")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0)
    assert os.getxattr(top / "a", "trusted.overlay.opaque") == b"y"
    assert os.getxattr(top / "a", "user.overlay.opaque") == b"y"
    assert not (top / "a/.wh..wh..opq").exists() and not (top / "a/.wh.gone").exists()


def test_zstd_plain_and_gzip_layers_unpack_alike(store: Store) -> None:
    entries = [Entry("f", data=b"same" * 1000)]
    for compression in ("none", "gzip", "zstd"):
        other = Store(store.root.parent / compression)
        diff_id = _add(other, entries, compression)
        layer = other.layer(diff_id)
        assert layer is not None
        assert (layer.path / "f").read_bytes() == b"same" * 1000


def test_device_nodes_are_skipped_and_fifos_made(store: Store) -> None:
    image = _image(store, None, [Entry("dev/null", tarfile.CHRTYPE),
                                 Entry("run/pipe", tarfile.FIFOTYPE)])
    root = image.layers[0].path
    assert not (root / "dev/null").exists()
    assert stat.S_ISFIFO(os.lstat(root / "run/pipe").st_mode)


@pytest.mark.parametrize("entries, complaint", [
    ([Entry("/etc/passwd")], "refusing member '/etc/passwd': absolute path"),
    ([Entry("a/../../x")], r"refusing member 'a/\.\./\.\./x': '\.\.'"),
    ([symlink("link", "/etc"), Entry("link/passwd")], "'link/passwd': path goes through a sym"),
    ([hardlink("h", "/etc/shadow")], "'h': absolute path"),
    ([hardlink("h", "missing")], "'h': hard link to 'missing', which is not a file of this"),
    ([Entry("f", xattrs={"trusted.overlay.redirect": "/x"})], "overlay's own xattr"),
])
def test_unsafe_members_are_refused_by_name_and_nothing_stays(
        store: Store, tmp_path: Path, entries: list[Entry], complaint: str) -> None:
    with pytest.raises(LayerError, match=complaint):
        _add(store, entries)
    assert list((store.root / "layers").iterdir()) == []
    assert list((store.root / "tmp").iterdir()) == []


def test_a_wrong_diff_id_or_blob_digest_is_refused(store: Store) -> None:
    tar = tar_bytes([Entry("f", data=b"x")])
    with store.adding(), pytest.raises(DigestError, match="uncompressed content has digest"):
        store.add_layer(sha256(b"other"), lambda dest: layers.unpack(io.BytesIO(tar), dest,
                                                                     "x"))
    with store.adding(), pytest.raises(DigestError, match="expected"):
        store.add_layer(sha256(tar), lambda dest: _verified(tar, sha256(b"other"), dest))
    with store.adding(), pytest.raises(DigestError, match="truncated"):
        store.add_layer(sha256(tar), lambda dest: _verified(tar, sha256(tar), dest, 1))
    assert store.layer(sha256(tar)) is None
    assert list((store.root / "tmp").iterdir()) == []


def _verified(tar: bytes, blob_digest: str, dest: Path, extra: int = 0) -> layers.Unpacked:
    reader = VerifyingReader(io.BytesIO(tar), blob_digest, len(tar) + extra, "blob")
    unpacked = layers.unpack(reader, dest, "blob")
    reader.verify()
    return unpacked


def test_a_corrupt_gzip_stream_is_a_layer_error(store: Store) -> None:
    blob = compress(tar_bytes([Entry("f", data=os.urandom(4096))]), "gzip")
    broken = blob[:40] + bytes(b ^ 0xFF for b in blob[40:80]) + blob[80:]
    with store.adding(), pytest.raises(LayerError, match="not a valid layer"):
        store.add_layer(sha256(b"x"), lambda dest: layers.unpack(io.BytesIO(broken), dest, "x"))


def test_the_same_layer_added_at_once_is_unpacked_once(store: Store) -> None:
    tar = tar_bytes([Entry("f", data=b"x" * 100_000)])
    calls: list[int] = []
    gate = threading.Barrier(4)

    def fill(dest: Path) -> layers.Unpacked:
        calls.append(1)
        return layers.unpack(io.BytesIO(tar), dest, "x")

    def add() -> None:
        gate.wait()
        with store.adding():
            store.add_layer(sha256(tar), fill)

    threads = [threading.Thread(target=add) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls == [1]
    assert len(list((store.root / "layers").iterdir())) == 1


def test_many_layers_fit_the_overlay_mount_option(store: Store, tmp_path: Path) -> None:
    stack = [[Entry(f"layer{i}", data=b"%d" % i)] for i in range(100)]
    image = _image(store, "localhost/tall:1", *stack)
    assert len(image.lowerdir()) < 4096 - 200
    assert _overlay(store, image, tmp_path, "cat layer0 layer57 layer99") == "05799"


def test_records_name_lookup_and_retag(store: Store) -> None:
    first = _image(store, "docker.io/library/app:1", [Entry("v", data=b"1")])
    assert store.lookup("app:1") == first.record  # a short name finds a local image
    assert store.lookup(first.record.id[:8]) == first.record
    assert store.lookup(first.record.digest) == first.record
    second = _image(store, "docker.io/library/app:1", [Entry("v", data=b"2")])
    assert store.lookup("docker.io/library/app:1") == second.record
    assert store.lookup(first.record.id).names == ()  # untagged, kept until pruned
    with pytest.raises(ImageUnknownError, match="not in the store"):
        store.lookup("app:2")


def test_a_localhost_name_wins_for_a_short_name(store: Store) -> None:
    _image(store, "quay.io/x/app:1", [Entry("v", data=b"q")])
    local = _image(store, "localhost/app:1", [Entry("v", data=b"l")])
    assert store.lookup("app:1") == local.record


def test_rmi_untags_first_then_deletes_the_layers_only_it_uses(store: Store) -> None:
    shared = [Entry("shared", data=b"s")]
    a = _image(store, "localhost/a:1", shared, [Entry("a", data=b"a")])
    b = _image(store, "localhost/b:1", shared)
    with store.adding():
        store.add_image("localhost/a:alias", store.read_blob(a.record.digest),
                        store.read_blob(a.record.config))
    assert store.remove("localhost/a:alias") == (a.record.id, False)
    assert store.remove("a:1") == (a.record.id, True)
    assert store.layer(a.record.diff_ids[1]) is None
    assert store.layer(b.record.diff_ids[0]) is not None
    assert not (store.root / a.layers[1].link).exists()
    assert store.records() == [store.lookup("b:1")]


def test_a_held_image_is_not_removed_without_force_and_its_layers_outlive_it(
        store: Store) -> None:
    image = _image(store, "localhost/web:1", [Entry("index.html", data=b"hi")])
    store.hold("web", image)
    assert store.holders(image.record) == ["web"]
    with pytest.raises(ImageInUseError, match=r"in use by container\(s\) web"):
        store.remove("web:1")
    store.remove("web:1", force=True)
    assert store.find("web:1") is None
    store.prune()
    assert (image.layers[0].path / "index.html").read_text() == "hi"  # still under "web"
    store.release("web")
    store.prune()
    assert not image.layers[0].path.exists()
    assert not any((store.root / "l").iterdir())


def test_prune_removes_untagged_images_unused_layers_and_leftovers(store: Store) -> None:
    old = _image(store, "localhost/app:1", [Entry("v", data=b"old")])
    new = _image(store, "localhost/app:1", [Entry("v", data=b"new")])
    orphan = _add(store, [Entry("orphan", data=b"o")])
    (store.root / "tmp" / "killed-pull").mkdir()
    pruned = store.prune()
    assert pruned.images == (old.record.id,) and pruned.layers == 2
    assert store.records() == [new.record]
    assert store.layer(orphan) is None and store.layer(new.record.diff_ids[0]) is not None
    assert list((store.root / "tmp").iterdir()) == []
    assert (new.layers[0].path / "v").read_text() == "new"


def test_image_config_defaults_are_parsed(store: Store) -> None:
    image = _image(store, None, [Entry("f")], config={
        "Entrypoint": ["/app"], "Cmd": ["--serve"], "Env": ["PATH=/bin", "A=b=c"],
        "WorkingDir": "/srv", "User": "1000:1000", "StopSignal": "SIGQUIT",
        "Labels": {"k": "v"}, "ExposedPorts": {"80/tcp": {}, "53/udp": {}},
        "Volumes": {"/data": {}},
        "Healthcheck": {"Test": ["CMD-SHELL", "true"], "Interval": 30_000_000_000,
                        "Retries": 3}})
    config = image.config
    assert (config.entrypoint, config.cmd) == (("/app",), ("--serve",))
    assert dict(config.env) == {"PATH": "/bin", "A": "b=c"}
    assert (config.working_dir, config.user, config.stop_signal) == ("/srv", "1000:1000",
                                                                     "SIGQUIT")
    assert config.exposed_ports == ("80/tcp", "53/udp") and config.volumes == ("/data",)
    assert config.healthcheck is not None and config.healthcheck.interval == 30.0
    assert config.healthcheck.retries == 3 and config.labels == {"k": "v"}
