"""Parsing of the human units a definition may use: sizes (512K, 256M, 2G) and durations."""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

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


MAX_CPUS = 8192  # the kernel's largest NR_CPUS: no CPU or memory node number reaches it
MIN_CPU_QUOTA = 0.01  # 1% of a CPU: the kernel refuses a quota below 1 ms per 100 ms period
_POSSIBLE_CPUS = Path("/sys/devices/system/cpu/possible")


@dataclass(frozen=True)
class CpuSet:
    """CPU (or memory node) numbers as sorted, disjoint ranges: ``0-99999`` is one pair, never
    a hundred thousand members, whatever a value says."""

    ranges: tuple[tuple[int, int], ...]

    def __str__(self) -> str:
        return ",".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in self.ranges)

    def __iter__(self) -> Iterator[int]:
        for lo, hi in self.ranges:
            yield from range(lo, hi + 1)

    def __len__(self) -> int:
        return sum(hi - lo + 1 for lo, hi in self.ranges)

    def outside(self, other: CpuSet) -> CpuSet:
        """The numbers of this set that ``other`` lacks."""
        left: list[tuple[int, int]] = []
        for lo, hi in self.ranges:
            for other_lo, other_hi in other.ranges:
                if other_hi < lo or other_lo > hi:
                    continue
                if other_lo > lo:
                    left.append((lo, other_lo - 1))
                lo = other_hi + 1
                if lo > hi:
                    break
            if lo <= hi:
                left.append((lo, hi))
        return CpuSet(tuple(left))


def _merged(ranges: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    return tuple(merged)


def parse_cpu_list(value: str) -> CpuSet:
    """CPU numbers from a cpuset list such as ``0-2,4``, as ranges; none beyond MAX_CPUS."""
    ranges = []
    for part in value.split(","):
        part = part.strip()
        if not part:
            continue
        lo_text, dash, hi_text = part.partition("-")
        if not (lo_text.isdigit() and (hi_text.isdigit() or not dash)):
            raise ValueError(f"not a CPU list: {value!r} (use e.g. 0-2,4)")
        lo, hi = int(lo_text), int(hi_text) if dash else int(lo_text)
        if lo > hi:
            raise ValueError(f"not a CPU list: {value!r}: the range {part} runs backwards")
        if hi >= MAX_CPUS:
            raise ValueError(f"not a CPU list: {value!r}: CPU {hi} is beyond any machine "
                             f"(numbers go up to {MAX_CPUS - 1})")
        ranges.append((lo, hi))
    if not ranges:
        raise ValueError(f"empty CPU list: {value!r}")
    return CpuSet(_merged(ranges))


@functools.cache
def host_cpus() -> CpuSet:
    """The CPUs this host can ever have (``/sys/devices/system/cpu/possible``)."""
    return parse_cpu_list(_POSSIBLE_CPUS.read_text())


def on_host(cpus: CpuSet) -> CpuSet:
    """``cpus``, if this host has every one of them."""
    missing = cpus.outside(host_cpus())
    if missing.ranges:
        raise ValueError(f"CPU {missing} of {str(cpus)!r} is not on this host (it has CPUs "
                         f"{host_cpus()})")
    return cpus


def parse_cpu_quota(value: str | int | float) -> float:
    """CPUs from ``50%`` (half of one CPU) or ``150%``; a bare number is a count of CPUs. As
    docker's ``--cpus``: from 1% of one CPU to all of this host's CPUs."""
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
    if not math.isfinite(cpus) or cpus <= 0:
        raise ValueError(f"CPU quota must be positive and finite: {value!r}")
    most = len(host_cpus())
    if not MIN_CPU_QUOTA <= cpus <= most:
        raise ValueError(f"CPU quota {value!r} is out of range: from 1% to {most * 100}% "
                         f"(this host has {most} CPUs)")
    return cpus
