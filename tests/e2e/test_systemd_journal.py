"""Native journal entries for container output, against the journald of a booted systemd."""

from __future__ import annotations

import json
import struct
import sys

from supervisor.systemd.journal import container_fields, encode
from tests.conftest import REPO
from tests.systemd_harness import booted_systemd


def test_encoding_of_plain_and_multiline_values() -> None:
    assert encode({"MESSAGE": "hi", "PRIORITY": "6"}) == b"MESSAGE=hi\nPRIORITY=6\n"
    assert encode({"MESSAGE": b"a\nb"}) == b"MESSAGE\n" + struct.pack("<Q", 3) + b"a\nb\n"


def test_entries_show_under_the_unit_and_the_container_name() -> None:
    sender = (
        "from supervisor.systemd.journal import JournalWriter, container_fields\n"
        "w = JournalWriter()\n"
        "w.send(b'line on stdout', container_fields('web', 'stdout', 'ctr@web.service'))\n"
        "w.send(b'line on stderr', container_fields('web', 'stderr', 'ctr@web.service'))\n"
    )
    with booted_systemd() as machine:
        machine.run([sys.executable, "-c", sender], environment={"PYTHONPATH": str(REPO)})
        machine.run(["journalctl", "--sync"])
        by_unit = machine.run(["journalctl", "-u", "ctr@web", "-o", "json", "--no-pager"]).stdout
        entries = [json.loads(line) for line in by_unit.splitlines()]
        assert [(e["MESSAGE"], e["PRIORITY"]) for e in entries] == [
            ("line on stdout", "6"), ("line on stderr", "3")]
        by_name = machine.run(["journalctl", "CONTAINER_NAME=web", "-o", "cat",
                               "--no-pager"]).stdout
        assert by_name.split("\n")[:2] == ["line on stdout", "line on stderr"]
    assert container_fields("db", "stdout", None).get("OBJECT_SYSTEMD_UNIT") is None
