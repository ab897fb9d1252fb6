"""``[health]``, ``notify`` and ``ready_timeout`` in a definition, and an image's Healthcheck: the
model's parsers, the defaults of the contract, and every bad value named by key."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from supervisor.config import loader
from supervisor.config.errors import DefinitionError
from supervisor.model import health
from supervisor.model.errors import Invalid
from supervisor.model.spec import ContainerSpec, HealthSpec

BASE = '[container]\nimage = "busybox"\ncommand = ["/bin/sleep", "9"]\n'


@pytest.fixture
def data(tmp_path: Path) -> Path:
    (tmp_path / "data" / "images" / "busybox").mkdir(parents=True)
    return tmp_path / "data"


def parse(data: Path, text: str) -> ContainerSpec:
    source = data.parent / "etc" / "hc-web.toml"
    return loader.parse_text("hc-web", textwrap.dedent(text), source=source, data_dir=data).spec


def test_the_design_example_and_its_defaults(data: Path) -> None:
    spec = parse(data, BASE + '''
        notify = "healthy"
        ready_timeout = "2min"
        [health]
        command = ["/bin/sh", "-c", "wget -q -O- localhost:80/health"]
        interval = "30s"
        timeout = "5s"
        retries = 3
        start_period = "0s"
        on_failure = "restart"
    ''')
    assert spec.health == HealthSpec(
        command=("/bin/sh", "-c", "wget -q -O- localhost:80/health"), interval=30.0,
        timeout=5.0, retries=3, start_period=0.0, on_failure="restart")
    assert (spec.notify, spec.ready_timeout) == ("healthy", 120.0)
    only_command = parse(data, BASE + '[health]\ncommand = ["/bin/true"]\n')
    assert only_command.health == HealthSpec(command=("/bin/true",), interval=30.0, timeout=5.0,
                                             retries=3, start_period=0.0, on_failure="none")
    plain = parse(data, BASE)
    assert (plain.health, plain.notify, plain.ready_timeout) == (None, "none", 60.0)


@pytest.mark.parametrize(("command", "argv"), [
    ('"wget -q localhost"', ("/bin/sh", "-c", "wget -q localhost")),
    ('["CMD-SHELL", "exit 1"]', ("/bin/sh", "-c", "exit 1")),
    ('["CMD", "/bin/true", "x"]', ("/bin/true", "x")),
    ('["NONE"]', ()),
])
def test_docker_forms_of_the_command(data: Path, command: str, argv: tuple[str, ...]) -> None:
    spec = parse(data, BASE + f"[health]\ncommand = {command}\n")
    assert spec.health is not None and spec.health.command == argv


@pytest.mark.parametrize(("extra", "key", "reason"), [
    ('[health]\ninterval = "5s"', "health.command", "missing: a health check needs a command"),
    ('[health]\ncommand = []', "health.command", "expected a non-empty array of strings"),
    ('[health]\ncommand = ["CMD"]', "health.command", "needs the program after it"),
    ('[health]\ncommand = ["CMD-SHELL", "a", "b"]', "health.command", "takes one string"),
    ('[health]\ncommand = ["NONE", "x"]', "health.command", "takes nothing after it"),
    ('[health]\ncommand = ["/bin/true", 3]', "health.command[1]", "expected a string"),
    ('[health]\ncommand = ["/bin/true"]\ninterval = "0s"', "health.interval",
     "must be at least 1ms"),
    ('[health]\ncommand = ["/bin/true"]\ntimeout = "soon"', "health.timeout",
     "not a duration: 'soon'"),
    ('[health]\ncommand = ["/bin/true"]\nretries = 0', "health.retries",
     "between 1 and 1000, got 0"),
    ('[health]\ncommand = ["/bin/true"]\nstart_period = -1', "health.start_period",
     "must not be negative"),
    ('[health]\ncommand = ["/bin/true"]\non_failure = "stop"', "health.on_failure",
     "must be one of 'none', 'kill', 'restart', got 'stop'"),
    ('[health]\ncommand = ["/bin/true"]\nretry = 2', "health.retry",
     "unknown key (did you mean retries?)"),
    ('notify = "ready"', "container.notify",
     "must be one of 'none', 'container', 'healthy', got 'ready'"),
    ('ready_timeout = "0"', "container.ready_timeout", "must be at least 1ms"),
    ('notify = "healthy"\n[health]\ncommand = ["NONE"]', "container.notify",
     'notify = "healthy" needs a health check to pass'),
    ('[health]\ncommand = ["/bin/true"]\n[health.x]\ny = 1', "health.x", "unknown key"),
])
def test_invalid_value(data: Path, extra: str, key: str, reason: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        parse(data, BASE + extra + "\n")
    assert caught.value.key == key, str(caught.value)
    assert reason in caught.value.reason
    assert str(caught.value).startswith(f"{data.parent / 'etc' / 'hc-web.toml'}: {key}: ")
    assert len(caught.value.problems) == 1, str(caught.value)


def test_an_image_healthcheck_with_docker_defaults() -> None:
    """Docker writes durations in nanoseconds and 0 for "the default"; the image config's parser
    gives seconds or None, and these are what a container then runs with."""
    spec = health.from_image(["CMD-SHELL", "curl -f localhost"], 10.0, 0, None, 0)
    assert spec == HealthSpec(command=("/bin/sh", "-c", "curl -f localhost"), interval=10.0,
                              timeout=5.0, retries=3, start_period=0.0)
    assert health.from_image(["NONE"]) is None
    with pytest.raises(Invalid, match="needs the program"):
        health.from_image(["CMD"])
