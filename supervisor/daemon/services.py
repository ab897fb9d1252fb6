"""``ctr@NAME.service``, the systemd face of definition NAME."""

from __future__ import annotations


def service_unit(name: str) -> str:
    return f"ctr@{name}.service"
