"""A profile and a capability set become one BPF program, through libseccomp, once per process.

Rules are picked for the container as moby picks them (:meth:`Rule.applies`), then given to
libseccomp as runc gives them: a rule whose action is the default one is dropped (libseccomp
refuses it), a system call this libseccomp does not know is skipped (profiles name calls of
newer kernels), and a rule with two conditions on the same argument becomes one rule per
condition. libseccomp's program gets the ENOSYS stub (:mod:`.bpf`) in front.

Programs are cached by :func:`cache_key`, a hash of what decides the output: the profile's
content, the capabilities it depends on (not the whole mask, so the default set and the default
set plus CAP_NET_ADMIN share one program), the host's architecture and kernel, and the
libseccomp build.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

from supervisor.model.seccomp import arches
from supervisor.model.seccomp.parse import ProfileError
from supervisor.model.seccomp.profile import FLAGS, Action, Condition, Profile
from supervisor.runtime.seccomp import binding, bpf
from supervisor.runtime.seccomp.program import Program

# libseccomp binding constants by profile name.
_ACTIONS = {
    "SCMP_ACT_ALLOW": "ALLOW", "SCMP_ACT_KILL": "KILL", "SCMP_ACT_KILL_THREAD": "KILL",
    "SCMP_ACT_KILL_PROCESS": "KILL_PROCESS", "SCMP_ACT_TRAP": "TRAP", "SCMP_ACT_LOG": "LOG",
}
_KERNEL_RE = re.compile(r"(\d+)\.(\d+)")

_cache: dict[str, Program] = {}


def compiled(profile: Profile, capabilities: int, directory: Path | None) -> Program:
    """``compile_profile``, also kept on disk in ``directory`` under its key, so a process that
    starts one container (``ctrctl run``) does not compile the same filter each time (about
    20 ms for the default profile here; a lookup is the key's hash and one read)."""
    if directory is None:
        return compile_profile(profile, capabilities)
    key = cache_key(profile, capabilities)
    if key in _cache:
        return _cache[key]
    path = directory / f"{key}.bpf"
    try:
        program = _cache[key] = Program(path.read_bytes(), key, _flags(profile))
        return program
    except (FileNotFoundError, ValueError):
        pass
    program = compile_profile(profile, capabilities)
    directory.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_bytes(program.code)
    os.replace(tmp, path)
    return program


def _flags(profile: Profile) -> int:
    return sum(FLAGS[name] for name in set(profile.flags))


def compile_profile(profile: Profile, capabilities: int) -> Program:
    """The program for a container given ``capabilities`` (a 64-bit mask): the set it runs with
    as root, as docker uses the bounding set; a non-root user's empty effective set does not
    take the capability-dependent calls away from a container configured with them."""
    key = cache_key(profile, capabilities)
    program = _cache.get(key)
    if program is None:
        code, limits = libseccomp_program(profile, capabilities)
        program = _cache[key] = Program(bpf.enosys_stub(limits) + code, key, _flags(profile))
    return program


def cache_key(profile: Profile, capabilities: int) -> str:
    native = arches.host()[0]
    major, minor = kernel_version()
    material = (f"{profile.digest}:{capabilities & profile.capability_mask:x}:{native}:"
                f"{major}.{minor}:{binding.identity()}")
    return hashlib.sha256(material.encode()).hexdigest()


def kernel_version() -> tuple[int, int]:
    """The running kernel's major.minor, which docker's ``minKernel`` compares against."""
    found = _KERNEL_RE.match(os.uname().release)
    return (int(found[1]), int(found[2])) if found else (0, 0)


def libseccomp_program(profile: Profile, capabilities: int) -> tuple[bytes, bpf.Limits]:
    """libseccomp's program alone, and the highest call number it names per ABI (for the stub)."""
    seccomp = binding.load()
    native, goarch, _ = arches.host()
    kernel = kernel_version()
    filter_arches = profile.arches_for(native)
    default = _action(seccomp, profile.default_action)
    filter_ = seccomp.SyscallFilter(default)
    # Numbers sorted into a binary tree instead of libseccomp's default linear list: a call that
    # is looked at walks ~10 comparisons rather than hundreds, and the kernel, which runs the
    # filter for every number when it is loaded to find the always-allowed ones, loads it in
    # half the time (0.46 ms instead of 1.0 ms here for the default profile).
    filter_.set_attr(seccomp.Attr.CTL_OPTIMIZE, 2)
    for name in filter_arches:
        token = getattr(seccomp.Arch, name.removeprefix("SCMP_ARCH_"))
        if not filter_.exist_arch(token):
            filter_.add_arch(token)
    named: set[str] = set()
    for i, rule in enumerate(profile.rules):
        if not rule.applies(capabilities, goarch, kernel):
            continue
        known = [n for n in rule.names if seccomp.resolve_syscall(seccomp.Arch.NATIVE, n) != -1]
        named.update(known)
        action = _action(seccomp, rule.action)
        if action == default:
            continue
        for name in known:
            for conditions in _condition_sets(rule.args):
                args = [seccomp.Arg(c.index, getattr(seccomp, c.op.removeprefix("SCMP_CMP_")),
                                    c.value, c.value_two) for c in conditions]
                try:
                    filter_.add_rule(action, name, *args)
                except RuntimeError as e:  # the binding's "Library error (errno = -22)"
                    raise ProfileError(f"syscalls[{i}]: libseccomp refused the rule for "
                                       f"{name}: {e}") from None
    fd = os.memfd_create("seccomp-bpf", os.MFD_CLOEXEC)
    with open(fd, "w+b") as out:
        filter_.export_bpf(out)
        out.seek(0)
        code = out.read()
    return code, _limits(seccomp, filter_arches, named)


def _limits(seccomp: ModuleType, filter_arches: tuple[str, ...], named: set[str]) -> bpf.Limits:
    limits: dict[int, tuple[int | None, int | None]] = {}
    for name in filter_arches:
        if name not in arches.AUDIT_ARCH:
            continue
        token = getattr(seccomp.Arch, name.removeprefix("SCMP_ARCH_"))
        numbers = [seccomp.resolve_syscall(token, call) for call in named]
        highest = max((n for n in numbers if n >= 0), default=None)
        plain, x32 = limits.get(arches.AUDIT_ARCH[name], (None, None))
        if name == "SCMP_ARCH_X32":
            x32 = highest
        else:
            plain = highest
        limits[arches.AUDIT_ARCH[name]] = (plain, x32)
    return limits


def _action(seccomp: ModuleType, action: Action) -> int:
    if action.name == "SCMP_ACT_ERRNO":
        return int(seccomp.ERRNO(action.errno))
    if action.name == "SCMP_ACT_TRACE":
        return int(seccomp.TRACE(action.errno))
    return int(getattr(seccomp, _ACTIONS[action.name]))


def _condition_sets(conditions: tuple[Condition, ...]) -> Iterator[tuple[Condition, ...]]:
    """All conditions in one rule (they must all hold), unless two test the same argument:
    libseccomp refuses that, so runc (and so docker) makes each condition a rule of its own."""
    indexes = [c.index for c in conditions]
    if len(set(indexes)) == len(indexes):
        yield conditions
    else:
        yield from ((c,) for c in conditions)
