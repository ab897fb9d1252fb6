"""Parsing of the human units a definition may use: sizes (512K, 256M, 2G) and durations."""

from __future__ import annotations

import re

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*$", re.IGNORECASE)
_SIZE_FACTORS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(us|ms|sec|s|min|m|hr|h)?", re.IGNORECASE)
_DURATION_FACTORS = {
    "us": 1e-6, "ms": 1e-3, "": 1.0, "s": 1.0, "sec": 1.0,
    "m": 60.0, "min": 60.0, "h": 3600.0, "hr": 3600.0,
}


def parse_size(value: str | int) -> int:
    """Bytes from an int or a string such as ``256M`` (binary multiples, as systemd reads them)."""
    if isinstance(value, bool):
        raise ValueError(f"not a size: {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"size must not be negative: {value}")
        return value
    match = _SIZE_RE.match(value)
    if not match:
        raise ValueError(f"not a size: {value!r} (use e.g. 512K, 256M, 2G)")
    number, unit = match.groups()
    return int(float(number) * _SIZE_FACTORS[unit.upper()])


def parse_duration(value: str | int | float) -> float:
    """Seconds from a number or a string such as ``100ms``, ``5s``, ``2min`` or ``1min 30s``."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"duration must not be negative: {value}")
        return float(value)
    text = value.strip()
    pos, total = 0, 0.0
    for match in _DURATION_RE.finditer(text):
        if text[pos:match.start()].strip():
            break
        total += float(match.group(1)) * _DURATION_FACTORS[(match.group(2) or "").lower()]
        pos = match.end()
    if not text or text[pos:].strip():
        raise ValueError(f"not a duration: {value!r} (use e.g. 100ms, 5s, 2min)")
    return total


def parse_cpu_quota(value: str | int | float) -> float:
    """CPUs from ``50%`` (half of one CPU) or ``150%``; a bare number is a count of CPUs."""
    if isinstance(value, bool):
        raise ValueError(f"not a CPU quota: {value!r}")
    if isinstance(value, int | float):
        cpus = float(value)
    else:
        text = value.strip()
        try:
            cpus = float(text[:-1]) / 100 if text.endswith("%") else float(text)
        except ValueError:
            raise ValueError(f"not a CPU quota: {value!r} (use e.g. 50%, 150%)") from None
    if cpus <= 0:
        raise ValueError(f"CPU quota must be positive: {value!r}")
    return cpus


def parse_cpu_list(value: str) -> frozenset[int]:
    """CPU numbers from a cpuset list such as ``0-2,4``."""
    cpus: set[int] = set()
    for part in value.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if "-" in part:
                lo, hi = (int(x) for x in part.split("-", 1))
                if lo > hi:
                    raise ValueError
                cpus.update(range(lo, hi + 1))
            else:
                cpus.add(int(part))
        except ValueError:
            raise ValueError(f"not a CPU list: {value!r} (use e.g. 0-2,4)") from None
    if not cpus:
        raise ValueError(f"empty CPU list: {value!r}")
    return frozenset(cpus)
