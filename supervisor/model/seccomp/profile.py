"""The in-memory profile every source becomes: docker/podman's JSON, OCI's ``linux.seccomp``, ours.

It keeps docker's conditional rules (``includes``/``excludes`` by capability, architecture and
kernel) unresolved, so one profile serves every capability set; :meth:`Rule.applies` decides per
container, as moby does when it turns a profile into the OCI object runc loads.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property

from supervisor.model import capabilities as caps

# Actions as libseccomp and the profile formats spell them; KILL is KILL_THREAD.
ACTIONS = frozenset({
    "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG",
})
# Argument comparisons: for MASKED_EQ, ``value`` is the mask and ``value_two`` the expected value.
OPERATORS = frozenset({
    "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
})
# seccomp(2) flags the OCI runtime spec lets a profile ask for (names of linux/seccomp.h).
FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": 1 << 0,
    "SECCOMP_FILTER_FLAG_LOG": 1 << 1,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 1 << 2,
}


@dataclass(frozen=True)
class Action:
    """What the kernel does: ``errno`` is the return of ERRNO and the message data of TRACE."""

    name: str
    errno: int | None = None


@dataclass(frozen=True)
class Condition:
    """A comparison of system-call argument ``index`` (0-5) with ``value``."""

    index: int
    op: str
    value: int
    value_two: int = 0


@dataclass(frozen=True)
class Match:
    """docker's ``includes``/``excludes``: capabilities, host architectures (Go's names, as moby
    compares them: "amd64", "arm64") and a minimum kernel; empty members match nothing."""

    caps: tuple[str, ...] = ()
    arches: tuple[str, ...] = ()
    min_kernel: tuple[int, int] | None = None


@dataclass(frozen=True)
class Rule:
    names: tuple[str, ...]
    action: Action
    args: tuple[Condition, ...] = ()
    includes: Match = field(default_factory=Match)
    excludes: Match = field(default_factory=Match)

    def applies(self, capabilities: int, arch: str, kernel: tuple[int, int]) -> bool:
        """moby's selection: every included capability held, no excluded one; the host's
        architecture listed in ``includes.arches`` (when given) and not in ``excludes.arches``;
        the kernel at least ``includes.min_kernel`` and below ``excludes.min_kernel``."""
        inc, exc = self.includes, self.excludes
        needed = caps.mask(inc.caps)
        return (
            capabilities & needed == needed
            and not capabilities & caps.mask(exc.caps)
            and (not inc.arches or arch in inc.arches)
            and arch not in exc.arches
            and (inc.min_kernel is None or kernel >= inc.min_kernel)
            and (exc.min_kernel is None or kernel < exc.min_kernel)
        )


@dataclass(frozen=True)
class Profile:
    """A system-call filter before compilation.

    ``architectures`` lists libseccomp names (``SCMP_ARCH_X86_64``) the filter covers;
    ``arch_map`` is docker's alternative: for the host's architecture, itself and its
    sub-architectures. ``source`` is what status displays show ("default", a path, "oci").
    """

    default_action: Action
    rules: tuple[Rule, ...]
    architectures: tuple[str, ...] = ()
    arch_map: tuple[tuple[str, tuple[str, ...]], ...] = ()
    flags: tuple[str, ...] = ()
    source: str = "custom"

    @cached_property
    def digest(self) -> str:
        """A hash of what the filter does (not of where it came from), for compile caches."""
        content = (self.default_action, self.rules, self.architectures, self.arch_map,
                   self.flags)
        return hashlib.sha256(repr(content).encode()).hexdigest()

    @cached_property
    def capability_mask(self) -> int:
        """The capabilities any rule depends on: other bits cannot change the compiled filter."""
        result = 0
        for rule in self.rules:
            result |= caps.mask(rule.includes.caps) | caps.mask(rule.excludes.caps)
        return result

    def arches_for(self, native: str) -> tuple[str, ...]:
        """The architectures to filter on a ``native`` host, native first."""
        if self.arch_map:
            for arch, subarches in self.arch_map:
                if arch == native:
                    return (arch, *subarches)
            return (native,)
        return (native, *(a for a in self.architectures if a != native))


def summary(profile: Profile | None) -> str:
    """What ``ctrctl status`` and the API show: "default", "unconfined", a path, or "oci"."""
    return "unconfined" if profile is None else profile.source
