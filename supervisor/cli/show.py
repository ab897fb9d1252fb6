"""Containers as people read them: the ``list`` table and the ``status`` page."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

COLUMNS = ("NAME", "STATE", "PID", "IP", "RESTARTS", "STARTED")
_SIZE_UNITS = ((1 << 40, "T"), (1 << 30, "G"), (1 << 20, "M"), (1 << 10, "K"))


def age(started_at: float | None, now: float | None = None) -> str:
    """``42s ago``, ``5m ago``, ``3h ago``, ``2d ago``; ``-`` for never."""
    if started_at is None:
        return "-"
    seconds = max(0, int((time.time() if now is None else now) - started_at))
    for unit, length in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= length:
            return f"{seconds // length}{unit} ago"
    return f"{seconds}s ago"


def _state(view: dict[str, Any]) -> str:
    if view.get("pulling"):
        return f"{view['state']} (pulling {_fraction(view['pulling'])})"
    if view.get("frozen"):
        return "frozen"
    health = view.get("health")  # as docker ps shows it: "running (healthy)"
    return f"{view['state']} ({health})" if health else str(view["state"])


def _fraction(pulling: dict[str, Any]) -> str:
    """How far a pull has got: bytes of all its layers known so far."""
    total = pulling.get("total") or 0
    return f"{100 * pulling.get('bytes', 0) // total}%" if total else "..."


def _pulling(pulling: dict[str, Any] | None) -> str | None:
    if not pulling:
        return None
    mib = 1 << 20
    return (f"{pulling['image']}: {pulling['layers_done']}/{pulling['layers']} layers, "
            f"{pulling['bytes'] / mib:.1f} of {pulling['total'] / mib:.1f} MiB")


def _or_dash(value: object) -> str:
    return "-" if value is None or value == "" else str(value)


def table(views: list[dict[str, Any]], now: float | None = None) -> str:
    """Left-aligned columns, as ``docker ps`` prints them; one line per container by name."""
    rows = [COLUMNS] + [
        (v["name"], _state(v), _or_dash(v.get("pid")), _or_dash(v.get("ip")),
         str(v.get("restarts", 0)), age(v.get("started_at"), now))
        for v in sorted(views, key=lambda v: str(v["name"]))
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    return "\n".join(
        "   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def size(value: int) -> str:
    """Bytes as the unit a definition would use: 268435456 -> ``256M``."""
    for factor, unit in _SIZE_UNITS:
        if value >= factor and value % factor == 0:
            return f"{value // factor}{unit}"
    return str(value)


def limits(resources: dict[str, Any]) -> str:
    """Limits in the notation of ``[resources]``: ``memory_max=256M cpu_quota=50%``."""
    def per_device(devices: dict[str, Any], unit: Callable[[Any], str] = str) -> str:
        return ",".join(f"{device}:{value if value == 'max' else unit(value)}"
                        for device, value in devices.items())

    def bytes_per_device(devices: dict[str, Any]) -> str:
        return per_device(devices, lambda v: size(int(v)))

    shown: dict[str, Callable[[Any], str]] = {
        "memory_max": lambda v: size(int(v)),
        "memory_high": lambda v: size(int(v)),
        "memory_swap_max": lambda v: size(int(v)),
        "cpu_quota": lambda v: f"{float(v) * 100:g}%",
        "io_read_bps": bytes_per_device, "io_write_bps": bytes_per_device,
        "io_read_iops": per_device, "io_write_iops": per_device,
    }
    return " ".join(f"{key}={shown.get(key, str)(value)}"
                    for key, value in resources.items() if value is not None)


def status(view: dict[str, Any], now: float | None = None) -> str:
    """Every field of a container, one ``Key: value`` per line; the empty ones left out."""
    started = view.get("started_at")
    exit_code = view.get("exit_code")
    fields: list[tuple[str, object]] = [
        ("Name", view["name"]),
        ("Definition", view.get("definition")),
        ("State", _state(view)),
        ("PID", view.get("pid")),
        ("IP", view.get("ip")),
        ("Image", view.get("image")),
        ("Pulling", _pulling(view.get("pulling"))),
        ("Exposed", " ".join(view.get("exposed_ports") or ()) or None),
        ("Labels", " ".join(f"{k}={v}" for k, v in (view.get("labels") or {}).items()) or None),
        ("Health", view.get("health")),
        ("Ready", None if view.get("state") != "running" else
         "yes" if view.get("ready") else "not yet"),
        ("Restarts", view.get("restarts")),
        ("Started", None if started is None else
         f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(started))} ({age(started, now)})"),
        ("Last exit", None if exit_code is None else
         f"{exit_code}{' (killed by the OOM killer)' if view.get('oom_killed') else ''}"),
        ("Reason", view.get("reason")),
        ("Limits", limits(view.get("resources") or {}) or None),
        ("Seccomp", view.get("seccomp")),
    ]
    return "\n".join(f"{key + ':':<12}{value}" for key, value in fields
                     if value is not None and value != "")
