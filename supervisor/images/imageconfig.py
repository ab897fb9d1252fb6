"""The image configuration (OCI image-spec ``config.json``, Docker's image JSON), typed and frozen.

Only what a container start uses is kept: the process defaults (Entrypoint, Cmd, Env, WorkingDir,
User, StopSignal), the metadata a user inspects (Labels, ExposedPorts, Volumes, Healthcheck) and
``rootfs.diff_ids``, the uncompressed digests every layer is verified against. Docker's rules for
combining them with a definition (``command`` replaces Cmd, ``entrypoint`` replaces Entrypoint,
the definition's environment wins) are ``supervisor.images.effective``'s. Env and StopSignal are
read by the model's parsers, as a definition's are.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from supervisor.images import digest
from supervisor.model.command import assignment
from supervisor.model.errors import Invalid
from supervisor.model.signals import signal

_PORT = re.compile(r"([0-9]{1,5})(?:/(tcp|udp|sctp))?")
_NANOSECONDS = 1e9


class ConfigError(ValueError):
    """An image config with a member ctr cannot use; the message names it."""


@dataclass(frozen=True)
class Healthcheck:
    """Docker's HEALTHCHECK: ``test`` is ``("CMD", ...)``, ``("CMD-SHELL", cmd)`` or
    ``("NONE",)``; durations in seconds, None where the image leaves the default."""

    test: tuple[str, ...]
    interval: float | None = None
    timeout: float | None = None
    start_period: float | None = None
    retries: int | None = None


@dataclass(frozen=True)
class ImageConfig:
    architecture: str
    os: str
    diff_ids: tuple[str, ...]
    entrypoint: tuple[str, ...] | None = None  # None: the image sets none (not the same as [])
    cmd: tuple[str, ...] | None = None
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    working_dir: str = ""
    user: str = ""
    stop_signal: str | None = None  # normalised: "SIGTERM"
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    exposed_ports: tuple[str, ...] = ()  # "80/tcp"
    volumes: tuple[str, ...] = ()
    healthcheck: Healthcheck | None = None
    created: str | None = None

    def to_json(self) -> dict[str, Any]:
        """What ``ctrctl image inspect`` shows, in the image-spec's own names."""
        health = self.healthcheck
        return {
            "Architecture": self.architecture, "Os": self.os, "Created": self.created,
            "Entrypoint": list(self.entrypoint) if self.entrypoint is not None else None,
            "Cmd": list(self.cmd) if self.cmd is not None else None,
            "Env": [f"{k}={v}" for k, v in self.env.items()],
            "WorkingDir": self.working_dir, "User": self.user, "StopSignal": self.stop_signal,
            "Labels": dict(self.labels), "ExposedPorts": list(self.exposed_ports),
            "Volumes": list(self.volumes),
            "Healthcheck": None if health is None else {
                "Test": list(health.test), "Interval": health.interval,
                "Timeout": health.timeout, "StartPeriod": health.start_period,
                "Retries": health.retries},
        }


def parse(data: bytes) -> ImageConfig:
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, ValueError) as e:
        raise ConfigError(f"image config is not JSON: {e}") from e
    if not isinstance(document, dict):
        raise ConfigError("image config is not a JSON object")
    config = document.get("config") or {}
    if not isinstance(config, dict):
        raise ConfigError("config: not an object")
    rootfs = document.get("rootfs")
    if not isinstance(rootfs, dict) or rootfs.get("type") != "layers":
        raise ConfigError('rootfs: want {"type": "layers", "diff_ids": [...]}')
    diff_ids = _strings(rootfs.get("diff_ids"), "rootfs.diff_ids")
    for i, diff_id in enumerate(diff_ids):
        try:
            digest.parse(diff_id)
        except digest.DigestError as e:
            raise ConfigError(f"rootfs.diff_ids[{i}]: {e}") from e
    return ImageConfig(
        architecture=_string(document, "architecture", "", "architecture"),
        os=_string(document, "os", "", "os"),
        diff_ids=diff_ids,
        entrypoint=_optional_strings(config.get("Entrypoint"), "config.Entrypoint"),
        cmd=_optional_strings(config.get("Cmd"), "config.Cmd"),
        env=MappingProxyType(_env(config.get("Env"))),
        working_dir=_string(config, "WorkingDir", "", "config.WorkingDir"),
        user=_string(config, "User", "", "config.User"),
        stop_signal=_signal(config.get("StopSignal")),
        labels=MappingProxyType(_labels(config.get("Labels"))),
        exposed_ports=_ports(config.get("ExposedPorts")),
        volumes=_volumes(config.get("Volumes")),
        healthcheck=_healthcheck(config.get("Healthcheck")),
        created=_string(document, "created", None, "created"),
    )


def _string(table: dict[str, Any], key: str, default: Any, where: str) -> Any:
    value = table.get(key)
    if value is None:
        return default
    if not isinstance(value, str):
        raise ConfigError(f"{where}: not a string")
    return value


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: not a list of strings")
    return tuple(value)


def _optional_strings(value: Any, where: str) -> tuple[str, ...] | None:
    return None if value is None else _strings(value, where)


def _env(value: Any) -> dict[str, str]:
    env: dict[str, str] = {}
    for i, item in enumerate(_optional_strings(value, "config.Env") or ()):
        try:
            name, text = assignment(item)
        except Invalid as e:
            raise ConfigError(f"config.Env[{i}]: {e}") from None
        env[name] = text
    return env


def _labels(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ConfigError("config.Labels: not an object of strings")
    return dict(value)


def _keys(value: Any, where: str) -> list[str]:
    """Docker's sets: ``{"80/tcp": {}}``."""
    if value is None:
        return []
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: not an object")
    return list(value)


def _ports(value: Any) -> tuple[str, ...]:
    ports = []
    for key in _keys(value, "config.ExposedPorts"):
        match = _PORT.fullmatch(key)
        if not match or not 0 < int(match.group(1)) < 65536:
            raise ConfigError(f"config.ExposedPorts: {key!r} is not PORT[/tcp|udp|sctp]")
        ports.append(f"{int(match.group(1))}/{match.group(2) or 'tcp'}")
    return tuple(ports)


def _volumes(value: Any) -> tuple[str, ...]:
    volumes = _keys(value, "config.Volumes")
    for path in volumes:
        if not path.startswith("/"):
            raise ConfigError(f"config.Volumes: {path!r} is not an absolute path")
    return tuple(volumes)


def _signal(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConfigError("config.StopSignal: not a string")
    try:
        return str(signal(value))
    except Invalid as e:
        raise ConfigError(f"config.StopSignal: {e}") from None


def _healthcheck(value: Any) -> Healthcheck | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ConfigError("config.Healthcheck: not an object")
    test = _strings(value.get("Test"), "config.Healthcheck.Test")
    if not test or test[0] not in ("CMD", "CMD-SHELL", "NONE"):
        raise ConfigError("config.Healthcheck.Test: must start with CMD, CMD-SHELL or NONE")

    def number(key: str, scale: float) -> Any:
        field_value = value.get(key)
        if field_value is None or field_value == 0:
            return None
        if not isinstance(field_value, int) or isinstance(field_value, bool) or field_value < 0:
            raise ConfigError(f"config.Healthcheck.{key}: not a non-negative integer")
        return field_value / scale if scale != 1 else field_value

    return Healthcheck(test, number("Interval", _NANOSECONDS), number("Timeout", _NANOSECONDS),
                       number("StartPeriod", _NANOSECONDS), number("Retries", 1))
