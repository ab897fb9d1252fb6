"""Reading a container's log files as ``ctrctl logs`` does: records of the shim's format in
NAME.log and its rotated files, selected by count, time and run, and followed across rotations
(the files written here by hand, as ctr-shim writes them)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from supervisor.daemon.logfiles import LogReader, Query, read_text
from supervisor.daemon.logs import remove_files
from supervisor.model.logs import Stream, record, run_mark, stamp


def at(second: int) -> bytes:
    return stamp(second * 10**9)


def line(text: str, second: int = 1, stream: Stream = "stdout", partial: bool = False) -> bytes:
    return record(stream, text.encode(), at(second), partial)


def read(path: Path, **query: object) -> bytes:
    with LogReader(path, Query(**query)) as reader:  # type: ignore[arg-type]
        return b"".join(iter(reader.read, b""))


@pytest.fixture
def log(tmp_path: Path) -> Path:
    return tmp_path / "web.log"


def test_an_instances_removal_takes_the_files_its_logs_are_read_from(log: Path) -> None:
    for name in ("web.log", "web.log.1", "web.log.2", "web2.log", "web.log.bak", "web-1.log.1"):
        log.with_name(name).write_bytes(line(name))
    remove_files(log)
    assert sorted(p.name for p in log.parent.iterdir()) == ["web-1.log.1", "web.log.bak",
                                                            "web2.log"]
    remove_files(log)  # nothing left to remove: no error
    log.with_name("web.log.1").write_bytes(line("rotated, NAME.log not begun again"))
    remove_files(log)
    assert not log.with_name("web.log.1").exists()


def test_the_rotated_files_come_first_oldest_first(log: Path) -> None:
    log.with_name("web.log.2").write_bytes(line("a"))
    log.with_name("web.log.1").write_bytes(line("b"))
    log.write_bytes(line("c"))
    log.with_name("web.log.4").write_bytes(line("beyond a gap: not one of them"))
    assert read_text(log) == b"a\nb\nc\n"


def test_a_file_met_twice_is_read_once(log: Path) -> None:
    """Rotated between two opens, NAME.log is NAME.log.1 as well."""
    log.write_bytes(line("once"))
    os.link(log, log.with_name("web.log.1"))
    assert read_text(log) == b"once\n"


def test_parts_of_a_line_are_joined_per_stream_and_the_time_is_its_first(log: Path) -> None:
    log.write_bytes(line("lo", 1, partial=True) + line("err", 2, "stderr")
                    + line("ng", 3) + line("unended", 4, partial=True))
    # Whole lines, by when they ended: the shim's read of a pipe may end inside a line written
    # at once, and that line is not to have the other stream's inside it.
    assert read(log) == b"err\nlong\nunended"
    assert read(log, timestamps=True) == (at(2) + b" err\n" + at(1) + b" long\n"
                                          + at(4) + b" unended")
    assert read(log, tail=2) == b"long\nunended"  # whole lines, by when they ended
    assert read(log, tail=3) == b"err\nlong\nunended"
    assert read(log, since=at(2)) == b"err\nunended"  # "long" began at 1
    assert read(log, until=at(1)) == b"long\n"
    assert read(log, tail=0) == b""


def test_the_last_record_is_read_once_its_newline_is_there(log: Path) -> None:
    log.write_bytes(line("whole") + line("being written")[:-5])
    assert read_text(log) == b"whole\n"


def test_tail_reads_back_only_as_far_as_it_needs(log: Path) -> None:
    big = b"".join(line(f"line-{n}", n) for n in range(20000))
    cut = big.index(b"\n", len(big) // 2) + 1  # rotated between two records
    log.with_name("web.log.1").write_bytes(big[:cut])
    log.write_bytes(big[cut:])
    assert read(log, tail=3) == b"line-19997\nline-19998\nline-19999\n"
    assert read(log, tail=15000).split() == [f"line-{n}".encode() for n in range(5000, 20000)]
    long = "y" * 70000  # a line in parts across blocks, each a record
    log.write_bytes(line("x") + b"".join(line(long[i:i + 16384], partial=True)
                                         for i in range(0, 70000, 16384)) + line(""))
    assert read(log, tail=1) == long.encode() + b"\n"


def test_previous_is_the_run_before_the_last(log: Path) -> None:
    log.write_bytes(line("before any mark") + run_mark(at(1)) + line("one", 1)
                    + line("unended", 1, partial=True) + run_mark(at(2)) + line("two", 2)
                    + run_mark(at(3)) + line("three", 3))
    assert read(log) == b"before any mark\none\nunendedtwo\nthree\n"
    assert read(log, previous=True) == b"two\n"
    assert read(log, tail=3) == b"unendedtwo\nthree\n"  # a run's end ends its lines
    log.write_bytes(line("first run, its mark rotated out") + run_mark(at(2)) + line("two"))
    assert read(log, previous=True) == b"first run, its mark rotated out\n"
    log.write_bytes(line("the current run, its mark rotated out"))
    assert read(log, previous=True) == b""


def test_following_goes_on_into_the_next_file_after_a_rotation(log: Path) -> None:
    log.write_bytes(line("one"))
    with LogReader(log, Query()) as reader:
        assert b"".join(iter(reader.read, b"")) == b"one\n"
        assert reader.more() == b""
        with log.open("ab") as f:
            f.write(line("two"))
        assert reader.more() == b"two\n"
        with log.open("ab") as f:  # then rotated twice before the follower looks again
            f.write(line("three"))
        log.rename(log.with_name("web.log.1"))
        log.write_bytes(line("four"))
        log.rename(log.with_name("web.log.2"))
        log.with_name("web.log.1").rename(log.with_name("web.log.3"))
        log.with_name("web.log.2").rename(log.with_name("web.log.1"))
        log.write_bytes(line("five"))
        assert reader.more() == b"three\nfour\nfive\n"


def test_a_follower_left_behind_the_cap_goes_on_from_the_oldest_file_kept(log: Path) -> None:
    log.write_bytes(line("one"))
    with LogReader(log, Query()) as reader:
        assert reader.read() == b"one\n"
        log.unlink()  # rotated out while the follower held it
        log.with_name("web.log.1").write_bytes(line("kept"))
        log.write_bytes(line("newest"))
        assert reader.more() == b"kept\nnewest\n"


def test_following_a_log_not_there_yet(log: Path) -> None:
    with LogReader(log, Query()) as reader:
        assert reader.read() == b"" and reader.more() == b""
        log.write_bytes(run_mark(at(1)) + line("hello"))
        assert reader.more() == b"hello\n"
