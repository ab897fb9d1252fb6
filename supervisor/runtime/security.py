"""The confinement a container's processes run under from their exec on, as runc applies it.

Unless ``privileged``: the capability set the spec asks for (docker's default with its
``capabilities_add``/``_drop``) in the bounding, permitted, effective and inheritable sets, or
an OCI process's five sets as given (so a non-root user keeps what its ambient set names);
``no_new_privs``, so a setuid binary cannot regain what was dropped; the switch to the configured
user (which drops the remaining capabilities for a non-root user); and the system-call filter,
loaded as the very last step before exec so ctr's own set-up is never filtered. Without
``no_new_privs`` the kernel takes a filter only from a process with CAP_SYS_ADMIN, so then it is
loaded before the capabilities are dropped, as runc does (the default profile allows every call
made after it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from supervisor.model import capabilities
from supervisor.model.security import DEFAULT_PROFILE, UNCONFINED
from supervisor.model.spec import CapabilitySets, SecuritySpec
from supervisor.runtime import syscalls
from supervisor.runtime.users import Identity

if TYPE_CHECKING:
    from supervisor.runtime.seccomp import Program

DEFAULT_CAPABILITY_MASK = capabilities.DEFAULT_MASK


@dataclass(frozen=True)
class Confinement:
    """What a process of a container is left with: ``capabilities`` (None: all, privileged),
    ``no_new_privs``, the compiled system-call filter (None: unconfined), and which profile that
    is, for ``ctrctl status``."""

    capabilities: int | None
    no_new_privs: bool
    seccomp: Program | None
    profile: str = UNCONFINED
    sets: CapabilitySets | None = None  # an OCI process's five sets (``capabilities``: bounding)


PRIVILEGED = Confinement(capabilities=None, no_new_privs=False, seccomp=None)


def confinement(security: SecuritySpec, privileged: bool,
                cache: Path | None = None) -> Confinement:
    """The confinement of a container with ``security``; privileged lifts all of it (and
    implies unconfined). The filter is compiled here, before any fork, and kept in ``cache``."""
    if privileged:
        return PRIVILEGED
    mask = capabilities.container_set(security.capabilities_add, security.capabilities_drop)
    program = None
    if security.seccomp != UNCONFINED:
        from supervisor.runtime import seccomp  # the profile and libseccomp: only when filtered

        profile = security.seccomp_profile or (
            seccomp.DEFAULT if security.seccomp == DEFAULT_PROFILE
            else seccomp.load_profile(security.seccomp))
        program = seccomp.compiled(profile, mask, cache)
    return Confinement(mask, security.no_new_privileges, program, security.seccomp,
                       security.capability_sets)


def _last_capability() -> int:
    with open("/proc/sys/kernel/cap_last_cap") as f:
        return int(f.read())


def drop_bounding(keep: int) -> None:
    """Remove every capability outside ``keep`` from the bounding set: no exec can regain one."""
    for cap in range(_last_capability() + 1):
        if not keep & (1 << cap):
            syscalls.prctl(syscalls.PR_CAPBSET_DROP, cap)


def set_capabilities(sets: CapabilitySets) -> None:
    """The effective, permitted, inheritable and ambient sets (of what this kernel has), as runc
    sets them after the switch to the process's user (which kept the permitted set:
    ``PR_SET_KEEPCAPS``)."""
    last = _last_capability()
    known = (1 << (last + 1)) - 1  # ALL: what this kernel has
    syscalls.capset(effective=sets.effective & known, permitted=sets.permitted & known,
                    inheritable=sets.inheritable & known)
    for cap in range(last + 1):
        if sets.ambient & (1 << cap):
            syscalls.prctl(syscalls.PR_CAP_AMBIENT, syscalls.PR_CAP_AMBIENT_RAISE, cap)


def switch_user(identity: Identity) -> None:
    """Become ``identity``; for a non-root uid the kernel clears the remaining capabilities."""
    os.setgroups(list(identity.groups))
    os.setgid(identity.gid)
    os.setuid(identity.uid)


def set_no_new_privs() -> None:
    syscalls.prctl(syscalls.PR_SET_NO_NEW_PRIVS, 1)


def confine(confined: Confinement, identity: Identity) -> None:
    """In the process about to exec: capabilities, user, no_new_privs, and the filter last of
    all (or first, where the kernel needs CAP_SYS_ADMIN for it: see the module docstring)."""
    program = confined.seccomp
    if program is not None and not confined.no_new_privs:
        _install(program)
    # The user first, while CAP_SETUID/CAP_SETGID are still there (a set without them may be
    # asked for); a non-root user is then left with none, as with docker, or with what an OCI
    # process's ambient set names.
    if confined.capabilities is not None:
        drop_bounding(confined.capabilities)
    if confined.sets is not None:
        syscalls.prctl(syscalls.PR_SET_KEEPCAPS, 1)  # cleared again by the exec
    switch_user(identity)
    if confined.sets is not None:
        set_capabilities(confined.sets)
    elif (keep := confined.capabilities) is not None and identity.uid == 0:
        set_capabilities(CapabilitySets(keep, keep, keep, keep))  # ctr's one set
    if confined.no_new_privs:
        set_no_new_privs()
    if program is not None and confined.no_new_privs:
        _install(program)


def _install(program: Program) -> None:
    # Imported by the parent already, which compiled the program before the fork: no import
    # work in the child, and none at all for an unconfined container.
    from supervisor.runtime.seccomp import install

    install(program)
