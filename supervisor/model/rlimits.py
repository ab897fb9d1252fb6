"""Resource limits of a container's processes (setrlimit(2)), as the OCI spec's
``process.rlimits`` and docker's ``--ulimit`` name them."""

from __future__ import annotations

from typing import Any

from supervisor.model.errors import Invalid
from supervisor.model.spec import Rlimit
from supervisor.model.values import integer, string

# The kernel's limits (asm-generic/resource.h), as the OCI spec spells them.
RLIMITS = (
    "RLIMIT_AS", "RLIMIT_CORE", "RLIMIT_CPU", "RLIMIT_DATA", "RLIMIT_FSIZE", "RLIMIT_LOCKS",
    "RLIMIT_MEMLOCK", "RLIMIT_MSGQUEUE", "RLIMIT_NICE", "RLIMIT_NOFILE", "RLIMIT_NPROC",
    "RLIMIT_RSS", "RLIMIT_RTPRIO", "RLIMIT_RTTIME", "RLIMIT_SIGPENDING", "RLIMIT_STACK",
)
UNLIMITED = 2**64 - 1  # RLIM_INFINITY as a 64-bit unsigned value, as the spec writes it
rlimit_amount = integer(0, UNLIMITED)


def rlimit_type(value: Any) -> str:
    """``RLIMIT_NOFILE``, or ``nofile`` as ``--ulimit`` writes it."""
    text = string(value).strip().upper()
    name = text if text.startswith("RLIMIT_") else f"RLIMIT_{text}"
    if name not in RLIMITS:
        raise Invalid(f"not a resource limit: {value!r} (one of {', '.join(RLIMITS)})")
    return name


def rlimit(kind: Any, soft: Any, hard: Any) -> Rlimit:
    """One limit; the soft one may not exceed the hard one (setrlimit refuses it)."""
    low, high = rlimit_amount(soft), rlimit_amount(hard)
    if low > high:
        raise Invalid(f"the soft limit {low} is above the hard limit {high}")
    return Rlimit(rlimit_type(kind), low, high)
