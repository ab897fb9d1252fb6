"""A container's confinement beyond its namespaces: the system-call filter it runs under and the
paths of /proc and /sys hidden or read-only besides the defaults."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from supervisor.model.capabilities import capability_list
from supervisor.model.errors import Invalid
from supervisor.model.seccomp.parse import ProfileError, load_profile
from supervisor.model.spec import SecuritySpec
from supervisor.model.values import absolute_path, boolean, items, string

DEFAULT_PROFILE = "default"  # docker's default profile (supervisor.model.seccomp.default)
UNCONFINED = "unconfined"

# Hidden (a read-only empty tmpfs on a directory, /dev/null on a file) and read-only by default,
# as runc and docker ship them.
MASKED_PATHS = (
    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
    "/sys/firmware", "/sys/devices/virtual/powercap",
)
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")


def seccomp_profile(value: Any) -> str:
    """``default``, ``unconfined`` or the absolute path of a profile (docker's JSON format or
    the OCI spec's ``linux.seccomp`` object), which must read as one."""
    text = string(value).strip()
    if text in (DEFAULT_PROFILE, UNCONFINED):
        return text
    if not text.startswith("/"):
        raise Invalid(f'not a seccomp profile: {text!r} (use "default", "unconfined" or the '
                      "absolute path of a JSON profile)")
    try:
        load_profile(text)
    except ProfileError as exc:
        raise Invalid(str(exc)) from None
    return text


def security_opt(value: Any) -> tuple[str, str]:
    """docker's ``--security-opt``: ``seccomp=PROFILE`` or ``no-new-privileges[=true|false]``,
    as (key, value)."""
    text = string(value)
    key, equals, setting = text.partition("=")
    if key == "seccomp" and equals:
        return key, seccomp_profile(setting)
    if key == "no-new-privileges" and setting in ("", "true", "false"):
        return key, setting or "true"
    raise Invalid(f"not a security option: {text!r} (use seccomp=unconfined|default|PATH or "
                  "no-new-privileges[=true|false])")


def paths(value: Any) -> tuple[str, ...]:
    """An array of absolute paths inside the container."""
    if not isinstance(value, list):
        raise Invalid(f'expected an array of absolute paths, e.g. ["/proc/scsi"], got {value!r}')
    return tuple(items(absolute_path, value))


def security_json(security: SecuritySpec) -> dict[str, Any]:
    """``security`` as JSON (what ``ctrctl exec`` is told, to confine its process alike). A
    profile given inline (an OCI bundle's, which ctr-runtime runs, not ctrd) has no form here:
    refused rather than dropped, so no process is ever confined less than its container."""
    if security.seccomp_profile is not None:
        raise ValueError("an inline seccomp profile has no JSON form; name it by its path")
    value = asdict(security)
    del value["seccomp_profile"]
    return {key: list(item) if isinstance(item, tuple) else item for key, item in value.items()}


def security_from_json(value: Any) -> SecuritySpec:
    """The JSON of ``security_json`` back, through the same parsers as ``[security]``."""
    if not isinstance(value, dict):
        raise Invalid(f"expected the security settings as an object, got {value!r}")
    return SecuritySpec(
        seccomp=seccomp_profile(value["seccomp"]),
        capabilities_add=capability_list(value["capabilities_add"]),
        capabilities_drop=capability_list(value["capabilities_drop"]),
        no_new_privileges=boolean(value["no_new_privileges"]),
        read_only_paths=paths(value["read_only_paths"]),
        masked_paths=paths(value["masked_paths"]),
    )
