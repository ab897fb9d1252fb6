"""The README's walk-through, run as written on a fresh machine (issue 16, section 8).

The machine is the host's systemd booted in namespaces of its own (tests/systemd_harness.py): a
throwaway copy of this host with systemd as PID 1, its own network, cgroups, /etc, /run and
/srv, so the examples run with the default paths, pool, bridge and names and change nothing on
the host. The blocks are read from README.md itself, so the test follows the README as it
changes: the first ``sh`` blocks of the sections below run with bash -e in the checkout, in
order, as many as SECTIONS says; a ``toml`` block before them whose first line names a file
(``# /etc/ctr/web.toml``) is that file.

Left out: "Two commands" (``make demo`` and ``make test`` are the set-up that runs this test),
and the examples of other features (OCI images against a registry, socket activation, the TCP
listener's TLS, the graders), which need a registry or certificates and are covered by those
features' own tests. One deviation: ``make install`` gets ``CTR_VENV`` (the checkout's
virtualenv), since the test has no network to fetch Python packages with.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.conftest import REPO
from tests.systemd_harness import BootedSystemd, booted_systemd

SECTIONS = {"Running a container: ctrctl run, with or without ctrd": 1, "ctrd: the supervisor": 1,
            "Under systemd": 1}  # heading: how many of its sh blocks are the walk-through
PAGE = "hello from ctr"  # what the README's first block serves
_FENCE = re.compile(r"^```(\w*)$")


def blocks(section: str) -> list[tuple[str, str]]:
    """The fenced blocks (language, text) under the README heading ``section``, in order."""
    found: list[tuple[str, str]] = []
    heading, language, lines = "", "", list[str]()
    fenced = False
    for line in (REPO / "README.md").read_text().splitlines():
        fence = _FENCE.match(line)
        if not fenced and line.startswith("#"):
            heading = line.lstrip("#").strip()
        elif fence and not fenced:
            fenced, language, lines = True, fence[1], []
        elif fence:
            if heading == section:
                found.append((language, "\n".join(lines) + "\n"))
            fenced = False
        elif fenced:
            lines.append(line)
    return found


@pytest.fixture(scope="module")
def machine() -> Iterator[BootedSystemd]:
    with booted_systemd() as booted:
        yield booted


def run_section(machine: BootedSystemd, section: str) -> str:
    """Every block of ``section``: files written, scripts run; the scripts' output."""
    output = ""
    found = blocks(section)
    scripts = [i for i, (language, _) in enumerate(found) if language == "sh"]
    assert len(scripts) >= SECTIONS[section], f"fewer sh blocks under {section!r} than expected"
    for language, text in found[:scripts[SECTIONS[section] - 1] + 1]:
        first = text.splitlines()[0]
        if language == "toml" and first.startswith("# /"):
            path = machine.path(first[2:].strip())
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        elif language == "sh":
            result = machine.run(["bash", "-euo", "pipefail", "-c", f"cd {REPO}\n{text}"],
                                 check=False, timeout=300,
                                 environment={"CTR_VENV": str(REPO / ".venv")})
            assert result.returncode == 0, (
                f"README, {section}: exited {result.returncode}:\n{text}\n{result.stdout}\n"
                f"{result.stderr}")
            output += result.stdout
    return output


def test_a_container_without_a_daemon(machine: BootedSystemd) -> None:
    output = run_section(machine, "Running a container: ctrctl run, with or without ctrd")
    assert PAGE in output  # the published port answered on the host's loopback


def test_ctrd_and_its_verbs(machine: BootedSystemd) -> None:
    output = run_section(machine, "ctrd: the supervisor")
    assert PAGE in output
    assert "web: ok" in output  # ctrctl check
    assert "50-update.toml" in output  # ctrctl cat shows the drop-in --persist wrote


def test_under_systemd(machine: BootedSystemd) -> None:
    output = run_section(machine, "Under systemd")
    assert "active (running)" in output  # systemctl status ctr@web
    reply = machine.run(["curl", "-s", "--retry", "20", "--retry-all-errors", "--retry-delay",
                         "1", "http://127.0.0.1:8080/"]).stdout
    assert reply.strip() == PAGE
