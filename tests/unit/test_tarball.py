"""Unpacking untrusted archives: malicious members are refused or defused, images keep working."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from supervisor.runtime import tarball
from supervisor.runtime.tarball import ArchiveError, unpack, unpack_cached


def _member(name: str, kind: bytes, attrs: dict[str, object]) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    for key, value in attrs.items():
        setattr(info, key, value)
    return info


def _open_for_writing(path: Path) -> tarfile.TarFile:
    if path.name.endswith(".gz"):
        return tarfile.open(path, "w:gz")
    if path.name.endswith(".xz"):
        return tarfile.open(path, "w:xz")
    return tarfile.open(path, "w")


def _archive(path: Path, *members: tuple[tarfile.TarInfo, bytes]) -> Path:
    with _open_for_writing(path) as tar:
        for info, data in members:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


def _file(name: str, data: bytes = b"data\n", **attrs: object) -> tuple[tarfile.TarInfo, bytes]:
    return _member(name, tarfile.REGTYPE, attrs), data


def _entry(name: str, kind: bytes, **attrs: object) -> tuple[tarfile.TarInfo, bytes]:
    return _member(name, kind, attrs), b""


def _escape_target(tmp_path: Path) -> Path:
    """A file outside the destination that a malicious archive tries to reach."""
    victim = tmp_path / "victim"
    victim.write_text("untouched\n")
    victim.chmod(0o600)
    return victim


@pytest.mark.parametrize(
    "members, what",
    [
        ([_file("../escape")], "'..'"),
        ([_file("ok/../../escape")], "'..'"),
        ([_file("/etc/ctr-test-escape")], "absolute path"),
        ([_entry("link", tarfile.SYMTYPE, linkname="../victim")], "points outside"),
        ([_entry("d/link", tarfile.SYMTYPE, linkname="../../victim")], "points outside"),
        # An absolute symlink is kept, but nothing may be written through it.
        ([_entry("up", tarfile.SYMTYPE, linkname="/tmp"), _file("up/escape")], "through a symlink"),
        ([_entry("f", tarfile.SYMTYPE, linkname="/tmp/x"), _file("f")], "through a symlink"),
        ([_entry("hard", tarfile.LNKTYPE, linkname="../victim")], "'..'"),
        ([_entry("hard", tarfile.LNKTYPE, linkname="/etc/passwd")], "absolute path"),
        (
            [_entry("s", tarfile.SYMTYPE, linkname="/etc/passwd"),
             _entry("hard", tarfile.LNKTYPE, linkname="s")],
            "hard link",
        ),
    ],
    ids=["dotdot", "dotdot-nested", "absolute", "symlink-up", "symlink-nested-up",
         "write-through-symlink-dir", "overwrite-symlink", "hardlink-up", "hardlink-absolute",
         "hardlink-to-symlink"],
)
def test_escaping_members_are_refused(
    tmp_path: Path, members: list[tuple[tarfile.TarInfo, bytes]], what: str
) -> None:
    victim = _escape_target(tmp_path)
    archive = _archive(tmp_path / "evil.tar", _file("a/ok"), *members)
    dest = tmp_path / "dest"
    with pytest.raises(ArchiveError, match=what) as refused:
        unpack(archive, dest)
    assert repr(members[-1][0].name) in str(refused.value)
    assert not dest.exists(), "a refused archive leaves nothing behind"
    assert victim.read_text() == "untouched\n" and stat.S_IMODE(victim.stat().st_mode) == 0o600
    assert not (tmp_path / "escape").exists()
    assert not Path("/etc/ctr-test-escape").exists()


def test_devices_and_fifos_are_not_created(tmp_path: Path) -> None:
    archive = _archive(
        tmp_path / "dev.tar",
        _entry("dev", tarfile.DIRTYPE),
        _entry("dev/mem", tarfile.CHRTYPE, devmajor=1, devminor=1),
        _entry("dev/sda", tarfile.BLKTYPE, devmajor=8, devminor=0),
        _entry("fifo", tarfile.FIFOTYPE),
        _file("etc/hostname"),
    )
    dest = unpack(archive, tmp_path / "dest")
    assert sorted(p.name for p in dest.rglob("*")) == ["dev", "etc", "hostname"]


def test_setid_bits_are_dropped_sticky_dirs_and_owners_kept(tmp_path: Path) -> None:
    archive = _archive(
        tmp_path / "modes.tar.gz",
        _entry("tmp", tarfile.DIRTYPE, mode=0o1777),
        _entry("root", tarfile.DIRTYPE, mode=0o700),
        _file("bin/su", mode=0o4755),
        _file("bin/wall", mode=0o2755),
        _file("home/ctr/notes", uid=1000, gid=1000, uname="nosuchuser", gname="nosuchgroup"),
    )
    dest = unpack(archive, tmp_path / "dest")
    assert stat.S_IMODE((dest / "bin/su").stat().st_mode) == 0o755
    assert stat.S_IMODE((dest / "bin/wall").stat().st_mode) == 0o755
    assert stat.S_IMODE((dest / "tmp").stat().st_mode) == 0o1777
    assert stat.S_IMODE((dest / "root").stat().st_mode) == 0o700
    if os.geteuid() == 0:
        notes = (dest / "home/ctr/notes").stat()
        assert (notes.st_uid, notes.st_gid) == (1000, 1000)


def test_image_links_survive(tmp_path: Path) -> None:
    """Absolute symlinks (ld.so, /bin/sh -> /bin/busybox) and in-tree hard links are kept."""
    archive = _archive(
        tmp_path / "links.tar.xz",
        _file("bin/busybox", b"#!binary\n", mode=0o755),
        _entry("bin/sh", tarfile.SYMTYPE, linkname="/bin/busybox"),
        _entry("usr/bin/env", tarfile.SYMTYPE, linkname="../../bin/busybox"),
        _entry("bin/ash", tarfile.LNKTYPE, linkname="bin/busybox"),
    )
    dest = unpack(archive, tmp_path / "dest")
    assert os.readlink(dest / "bin/sh") == "/bin/busybox"
    assert (dest / "usr/bin/env").read_bytes() == b"#!binary\n"
    assert (dest / "bin/ash").stat().st_ino == (dest / "bin/busybox").stat().st_ino


def test_single_top_level_directory_is_stripped(tmp_path: Path) -> None:
    archive = _archive(
        tmp_path / "potato.tar.gz",
        _entry("potato", tarfile.DIRTYPE),
        _file("potato/potato.html", b"<h1>potato</h1>\n"),
        _file("potato/img/p.png", b"png"),
        _entry("potato/index.html", tarfile.LNKTYPE, linkname="potato/potato.html"),
    )
    dest = unpack(archive, tmp_path / "dest")
    assert sorted(p.name for p in dest.iterdir()) == ["img", "index.html", "potato.html"]
    assert (dest / "index.html").read_text() == "<h1>potato</h1>\n"


def test_dot_slash_archive_of_a_tree_unpacks_as_the_root(tmp_path: Path) -> None:
    """`tar -C rootfs -cf x.tar .` names members ./bin/...: that is not a top-level dir to strip."""
    archive = _archive(
        tmp_path / "rootfs.tar",
        _entry(".", tarfile.DIRTYPE, mode=0o700),
        _entry("./bin", tarfile.DIRTYPE),
        _file("./bin/true"),
    )
    dest = unpack(archive, tmp_path / "dest")
    assert (dest / "bin/true").is_file()
    assert stat.S_IMODE(dest.stat().st_mode) == 0o755


def test_two_top_level_entries_are_not_stripped(tmp_path: Path) -> None:
    archive = _archive(tmp_path / "two.tar", _file("potato/potato.html"), _file("README"))
    dest = unpack(archive, tmp_path / "dest")
    assert sorted(p.name for p in dest.iterdir()) == ["README", "potato"]


def test_single_top_level_file_is_not_stripped(tmp_path: Path) -> None:
    dest = unpack(_archive(tmp_path / "one.tar", _file("README")), tmp_path / "dest")
    assert (dest / "README").is_file()


def test_corrupt_archive_is_an_archive_error(tmp_path: Path) -> None:
    archive = tmp_path / "broken.tar.gz"
    archive.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(ArchiveError, match=r"broken\.tar\.gz"):
        unpack(archive, tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


def test_unpack_refuses_a_non_empty_destination(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "mine").write_text("keep")
    with pytest.raises(FileExistsError):
        unpack(_archive(tmp_path / "a.tar", _file("x")), dest)
    assert (dest / "mine").read_text() == "keep"


def test_cache_unpacks_once_and_again_after_a_change(tmp_path: Path) -> None:
    archive = _archive(tmp_path / "img.tar.gz", _file("etc/version", b"1\n"), _file("bin/sh"))
    cache = tmp_path / "cache"
    first = unpack_cached(archive, cache)
    assert (first / "etc/version").read_text() == "1\n"
    (first / "marker").write_text("still here")
    assert unpack_cached(archive, cache) == first
    assert (first / "marker").exists(), "the second call must reuse the unpacked tree"

    st = archive.stat()
    os.utime(archive, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    changed = unpack_cached(archive, cache)
    assert changed != first and not (changed / "marker").exists()
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    assert not [p for p in cache.iterdir() if ".tmp" in p.name], "no temp dir left behind"


def test_cache_under_concurrent_processes_unpacks_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = _archive(
        tmp_path / "big.tar.gz", *(_file(f"d/f{i}", os.urandom(64 * 1024)) for i in range(64))
    )
    cache, log, results = tmp_path / "cache", tmp_path / "unpacks.log", tmp_path / "results"
    results.mkdir()

    def counting_unpack(a: Path, d: Path) -> Path:
        with open(log, "a") as f:
            f.write(f"{os.getpid()}\n")
        return unpack(a, d)

    monkeypatch.setattr(tarball, "unpack", counting_unpack)
    pids = []
    try:
        for i in range(4):
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    (results / str(i)).write_text(str(unpack_cached(archive, cache)))
                    code = 0
                finally:
                    os._exit(code)
            pids.append(pid)
    finally:
        statuses = [os.waitpid(pid, 0)[1] for pid in pids]
    assert statuses == [0, 0, 0, 0]
    paths = {(results / str(i)).read_text() for i in range(4)}
    assert len(paths) == 1
    assert len(list(Path(paths.pop()).glob("f*"))) == 64
    assert len(log.read_text().splitlines()) == 1


@pytest.mark.parametrize(("members", "what"), [
    ([_entry("x", tarfile.DIRTYPE), _file("x")], "would replace a directory with a file"),
    ([_entry("x", tarfile.DIRTYPE), _entry("x", tarfile.SYMTYPE, linkname="y")],
     "would replace a directory with a symlink"),
    ([_file("x"), _entry("x", tarfile.DIRTYPE)], "would replace a file with a directory"),
    ([_file("x"), _file("x/y")], "path goes through a file"),
    ([_file("x"), _entry("h", tarfile.LNKTYPE, linkname="x"), _file("h/y")],
     "path goes through a file"),
])
def test_a_member_over_one_of_another_kind_is_refused(
        tmp_path: Path, members: list[tuple[tarfile.TarInfo, bytes]], what: str) -> None:
    """Found by tests/unit/test_fuzz_parsers.py: tarfile failed half-way with IsADirectoryError
    or NotADirectoryError, which no caller expects of an archive."""
    dest = tmp_path / "dest"
    with pytest.raises(ArchiveError, match=what) as refused:
        unpack(_archive(tmp_path / "kinds.tar", *members), dest)
    assert repr(members[-1][0].name) in str(refused.value)
    assert not dest.exists()


def test_a_file_over_a_file_and_a_symlink_over_a_symlink_are_taken(tmp_path: Path) -> None:
    archive = _archive(tmp_path / "twice.tar", _file("x", b"old\n"), _file("x", b"new\n"),
                       _entry("l", tarfile.SYMTYPE, linkname="x"),
                       _entry("l", tarfile.SYMTYPE, linkname="y"))
    dest = unpack(archive, tmp_path / "dest")
    assert (dest / "x").read_bytes() == b"new\n" and os.readlink(dest / "l") == "y"
