"""The log's values: [logs] read by the model's parsers (the default cap when unset), the CRI
record a line is stored as, and the times --since and --until take, in docker's forms."""

from __future__ import annotations

import datetime
import textwrap
from pathlib import Path

import pytest

from supervisor.config import loader
from supervisor.config.errors import DefinitionError
from supervisor.model import logs
from supervisor.model.errors import Invalid
from supervisor.model.spec import ContainerSpec, LogsSpec

BASE = '[container]\nimage = "busybox"\n'
NOW = 1_800_000_000 * 10**9


def parse(tmp_path: Path, text: str) -> ContainerSpec:
    (tmp_path / "data" / "images" / "busybox").mkdir(parents=True, exist_ok=True)
    return loader.parse_text("web", textwrap.dedent(text), source=tmp_path / "web.toml",
                             data_dir=tmp_path / "data").spec


def test_a_definition_without_logs_has_the_default_cap(tmp_path: Path) -> None:
    assert parse(tmp_path, BASE).logs == LogsSpec(max_size=10 << 20, max_files=3)


def test_logs_keys(tmp_path: Path) -> None:
    spec = parse(tmp_path, BASE + '[logs]\nmax_size = "256K"\nmax_files = 1\n')
    assert spec.logs == LogsSpec(max_size=256 << 10, max_files=1)


@pytest.mark.parametrize(("extra", "key", "reason"), [
    ('max_size = "1K"', "logs.max_size", "must be at least 64K, got '1K'"),
    ('max_size = "lots"', "logs.max_size", "not a size: 'lots'"),
    ("max_files = 0", "logs.max_files", "must be between 1 and 1000, got 0"),
    ("max_files = 1.5", "logs.max_files", "expected an integer, got float 1.5"),
    ('driver = "json-file"', "logs.driver", "unknown key"),
])
def test_a_bad_logs_key_is_named(tmp_path: Path, extra: str, key: str, reason: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        parse(tmp_path, f"{BASE}[logs]\n{extra}\n")
    assert caught.value.key == key and reason in caught.value.reason
    assert str(caught.value).startswith(f"{tmp_path / 'web.toml'}: {key}: ")


# -- records --------------------------------------------------------------------------------------

def test_a_record_is_a_cri_log_line_and_reads_back() -> None:
    when = logs.stamp(1_764_583_200_123_456_789)
    assert when == b"2025-12-01T10:00:00.123456789Z"
    line = logs.record("stderr", b"a line", when)
    assert line == b"2025-12-01T10:00:00.123456789Z stderr F a line\n"
    parsed = logs.parse_record(line.rstrip(b"\n"))
    assert parsed == logs.Record(when, b"stderr", False, b"a line")
    assert parsed.text == b"a line\n" and not parsed.begins_run
    part = logs.parse_record(logs.record("stdout", b"a pa", when, partial=True)[:-1])
    assert part.partial and part.text == b"a pa"
    mark = logs.parse_record(logs.run_mark(when)[:-1])
    assert mark.begins_run and mark.text == b""
    assert logs.parse_record(when + b" stdout F ") == logs.Record(when, b"stdout", False, b"")


@pytest.mark.parametrize("line", [
    b"plain output from before",  # a file of raw output, as ctr wrote them once
    b"2025-12-01T10:00:00Z stdout F no nanoseconds",
    b"2025-12-01T10:00:00.123456789Z stdin F x",
    b"2025-12-01T10:00:00.123456789Z stdout X x",
    b"",
])
def test_a_line_that_is_no_record_is_output_without_a_time(line: bytes) -> None:
    assert logs.parse_record(line) == logs.Record(None, b"stdout", False, line)


def test_the_other_tags_of_the_format_are_ignored() -> None:
    line = b"2025-12-01T10:00:00.123456789Z stdout P:x a part"
    assert logs.parse_record(line).partial


# -- times ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("2025-12-01T10:00:00.123456789Z", 1_764_583_200_123_456_789),  # what --timestamps prints
    ("2025-12-01T11:00:00+01:00", 1_764_583_200 * 10**9),
    ("2025-12-01T10:00:00,5Z", 1_764_583_200_500_000_000),
    ("1764583200", 1_764_583_200 * 10**9),
    ("1764583200.000000001", 1_764_583_200 * 10**9 + 1),
    ("10m", NOW - 600 * 10**9),
    ("1h30min", NOW - 5400 * 10**9),
    ("90s", NOW - 90 * 10**9),
])
def test_instants_in_dockers_forms(text: str, expected: int) -> None:
    assert logs.instant(text, now=NOW) == expected


def test_an_instant_without_an_offset_is_local_time() -> None:
    local = datetime.datetime(2025, 12, 1, 10, 0).timestamp()
    assert logs.instant("2025-12-01 10:00") == int(local) * 10**9
    assert logs.instant("2025-12-01") == int(datetime.datetime(2025, 12, 1).timestamp()) * 10**9


@pytest.mark.parametrize(("value", "reason"), [
    ("yesterday", "not a time: 'yesterday' (use e.g. 2026-12-01T10:00:00Z"),
    ("2025-13-01", "not a time: '2025-13-01'"),
    (True, "expected a time such as"),
    ([1], "expected a time such as \"2026-12-01T10:00:00Z\" or \"10m\", got an array"),
])
def test_a_bad_instant_says_what_it_takes(value: object, reason: str) -> None:
    with pytest.raises(Invalid, match=None) as caught:
        logs.instant(value)
    assert str(caught.value).startswith(reason)


def test_unix_text_is_exact() -> None:
    assert logs.unix_text(1_764_583_200_000_000_001) == "1764583200.000000001"
    assert logs.instant(logs.unix_text(NOW + 7)) == NOW + 7
