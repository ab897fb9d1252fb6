"""Values in the units people write: sizes (``512K``, ``256M``, ``2G``), durations (``100ms``,
``5s``, ``2min``), rates (``10mbit``, ``1M``), CPU sets (``0-2,4``) and CPU quotas (``50%``)."""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from supervisor.model.errors import Invalid, describe
from supervisor.model.values import string

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*$", re.IGNORECASE)
_SIZE_FACTORS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
MAX_SIZE = 1 << 62  # beyond any memory or disk; also what v1 reports as "no limit"

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(us|ms|sec|s|min|m|hr|h)?", re.IGNORECASE)
_DURATION_FACTORS = {
    "us": 1e-6, "ms": 1e-3, "": 1.0, "s": 1.0, "sec": 1.0,
    "m": 60.0, "min": 60.0, "h": 3600.0, "hr": 3600.0,
}
MAX_DURATION = 100 * 365 * 86400.0  # a century: beyond it a timer is a mistake

# Rates as tc(8) writes them: decimal bits per second, or bytes per second ("bps"), SI or IEC.
_RATE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?)(bit|bps)\s*$", re.IGNORECASE)
_RATE_PREFIXES = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12,
                  "ki": 1 << 10, "mi": 1 << 20, "gi": 1 << 30, "ti": 1 << 40}
MAX_RATE = 2**32 - 1  # bytes per second: the 32 bits tc's token bucket takes (34 Gbit/s)
_RATE_UNITS = (("gbit", 10**9), ("mbit", 10**6), ("kbit", 10**3))

MAX_CPUS = 8192  # the kernel's largest NR_CPUS: no CPU or memory node number reaches it
MIN_CPU_QUOTA = 0.01  # 1% of a CPU: the kernel refuses a quota below 1 ms per 100 ms period
POSSIBLE_CPUS = Path("/sys/devices/system/cpu/possible")


def size(value: Any) -> int:
    """Bytes from an integer or a string such as ``256M`` (binary multiples, as systemd reads
    them)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise Invalid(f"expected a size such as \"256M\", got {describe(value)}")
    if isinstance(value, int):
        amount = value
    else:
        match = _SIZE_RE.match(value)
        if not match:
            raise Invalid(f"not a size: {value!r} (use e.g. 512K, 256M, 2G)")
        number, unit = match.groups()
        amount = int(float(number) * _SIZE_FACTORS[unit.upper()])
    if amount < 0:
        raise Invalid(f"size must not be negative: {value!r}")
    if amount > MAX_SIZE:
        raise Invalid(f"size {value!r} is beyond any machine (at most 4E)")
    return amount


def rate(value: Any) -> int:
    """Bytes per second from tc's notation (``10mbit``, ``500kbit``, ``1mbps``: bits or bytes
    per second) or a size per second (``1M`` is 1 MiB/s, an integer bytes per second, as the
    ``io_*_bps`` limits read it)."""
    if isinstance(value, str) and (match := _RATE_RE.match(value)):
        number, prefix, unit = match.groups()
        amount = float(number) * _RATE_PREFIXES[prefix.lower()]
        per_second = round(amount / 8 if unit.lower() == "bit" else amount)
    else:
        try:
            per_second = size(value)
        except Invalid:
            raise Invalid(f"not a rate: {value!r} (use e.g. 10mbit, 500kbit, 1M: bits per "
                          "second as tc writes them, or bytes per second)") from None
    if per_second <= 0:
        raise Invalid(f"a rate must be more than 0, got {value!r}")
    if per_second > MAX_RATE:
        raise Invalid(f"rate {value!r} is beyond what tc's token bucket takes (at most "
                      f"{MAX_RATE * 8 // 10**9}gbit)")
    return per_second


def rate_text(per_second: int) -> str:
    """Bytes per second as :func:`rate` reads them back, in the largest unit that is exact:
    ``10mbit`` as tc writes it, else a size per second (``1M``), else bits."""
    bits = per_second * 8
    for unit, factor in _RATE_UNITS:
        if bits % factor == 0:
            return f"{bits // factor}{unit}"
    for unit in "TGMK":
        if per_second % _SIZE_FACTORS[unit] == 0:
            return f"{per_second // _SIZE_FACTORS[unit]}{unit}"
    return f"{bits}bit"


def duration(value: Any) -> float:
    """Seconds from a number or a string such as ``100ms``, ``5s``, ``2min`` or ``1min 30s``."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise Invalid(f"expected a duration such as \"5s\", got {describe(value)}")
    if isinstance(value, int | float):
        seconds = float(value)
        if seconds < 0:
            raise Invalid(f"duration must not be negative: {value}")
    else:
        text = value.strip()
        pos, seconds = 0, 0.0
        for match in _DURATION_RE.finditer(text):
            if text[pos:match.start()].strip():
                break
            seconds += float(match.group(1)) * _DURATION_FACTORS[(match.group(2) or "").lower()]
            pos = match.end()
        if not text or text[pos:].strip():
            raise Invalid(f"not a duration: {value!r} (use e.g. 100ms, 5s, 2min)")
    if not seconds <= MAX_DURATION:  # also NaN
        raise Invalid(f"duration {value!r} is longer than a century")
    return seconds


@dataclass(frozen=True)
class CpuSet:
    """CPU (or memory node) numbers as sorted, disjoint ranges: ``0-99999`` is one pair, never
    a hundred thousand members, whatever a value says. ``str()`` is the kernel's list format."""

    ranges: tuple[tuple[int, int], ...]

    @classmethod
    def of(cls, text: str) -> CpuSet:
        """The set ``text`` (``0-2,4``) writes, as far as its syntax goes."""
        ranges = []
        for part in text.split(","):
            part = part.strip()
            if not part:
                continue
            lo_text, dash, hi_text = part.partition("-")
            if not (lo_text.isdigit() and (hi_text.isdigit() or not dash)):
                raise Invalid(f"not a CPU list: {text!r} (use e.g. 0-2,4)")
            lo, hi = int(lo_text), int(hi_text) if dash else int(lo_text)
            if lo > hi:
                raise Invalid(f"not a CPU list: {text!r}: the range {part} runs backwards")
            if hi >= MAX_CPUS:
                raise Invalid(f"not a CPU list: {text!r}: CPU {hi} is beyond any machine "
                              f"(numbers go up to {MAX_CPUS - 1})")
            ranges.append((lo, hi))
        if not ranges:
            raise Invalid(f"empty CPU list: {text!r}")
        return cls(_merged(ranges))

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


@functools.cache
def host_cpus() -> CpuSet:
    """The CPUs this host can ever have (``/sys/devices/system/cpu/possible``)."""
    return CpuSet.of(POSSIBLE_CPUS.read_text())


def cpu_list(value: Any) -> CpuSet:
    """CPUs this host has, as a cpuset list such as ``0-2,4``."""
    cpus = CpuSet.of(string(value))
    missing = cpus.outside(host_cpus())
    if missing.ranges:
        raise Invalid(f"CPU {missing} of {str(cpus)!r} is not on this host (it has CPUs "
                      f"{host_cpus()})")
    return cpus


def cpu_quota(value: Any) -> float:
    """CPUs from ``50%`` (half of one CPU) or ``150%``; a bare number is a count of CPUs. As
    docker's ``--cpus``: from 1% of one CPU to all of this host's CPUs."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise Invalid(f"not a CPU quota: {value!r} (use e.g. \"50%\", \"150%\")")
    if isinstance(value, int | float):
        cpus = float(value)
    else:
        text = value.strip()
        try:
            cpus = float(text[:-1]) / 100 if text.endswith("%") else float(text)
        except ValueError:
            raise Invalid(f"not a CPU quota: {value!r} (use e.g. 50%, 150%)") from None
    if not math.isfinite(cpus) or cpus <= 0:
        raise Invalid(f"CPU quota must be positive and finite: {value!r}")
    most = len(host_cpus())
    if not MIN_CPU_QUOTA <= cpus <= most:
        raise Invalid(f"CPU quota {value!r} is out of range: from 1% to {most * 100}% "
                      f"(this host has {most} CPUs)")
    return cpus
