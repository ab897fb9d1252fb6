"""The device allow-list on cgroup v2: an eBPF program of type ``BPF_PROG_TYPE_CGROUP_DEVICE``
attached to the container's cgroup, as runc and systemd make it (v2 has no devices files).

The kernel runs the program on every open and mknod of a device node by a process of the
cgroup, with ``struct bpf_cgroup_dev_ctx`` {access_type = access << 16 | type, major, minor}; it
returns 1 to allow, 0 to refuse (EPERM). The program is a chain of the rules in order, the first
that matches deciding, and a refusal at the end. It is attached with BPF_F_ALLOW_MULTI, so
programs of the parent cgroups (systemd's) still run as well: the kernel allows an access only if
every one of them does. The attachment keeps the program alive; it goes with the cgroup.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from pathlib import Path

from supervisor.model.spec import DeviceRule
from supervisor.runtime import syscalls

# struct bpf_cgroup_dev_ctx and its constants (linux/bpf.h).
_TYPES = {"b": 1, "c": 2}  # BPF_DEVCG_DEV_BLOCK, BPF_DEVCG_DEV_CHAR
_ACCESS = {"m": 1, "r": 2, "w": 4}  # BPF_DEVCG_ACC_MKNOD, _READ, _WRITE
_ALL_ACCESS = 7

# eBPF opcodes used (linux/bpf_common.h, linux/bpf.h).
_LDX_MEM_W = 0x61  # dst = *(u32 *)(src + off)
_ALU32_AND_K = 0x54  # dst &= imm (32-bit)
_ALU32_RSH_K = 0x74  # dst >>= imm
_ALU32_MOV_X = 0xBC  # dst = src
_ALU64_MOV_K = 0xB7  # dst = imm
_JNE_K = 0x55  # if dst != imm: pc += off
_EXIT = 0x95

# Registers after the prologue: the request, unpacked.
_TYPE, _REQUESTED, _MAJOR, _MINOR, _SCRATCH, _RESULT, _CTX = 2, 3, 4, 5, 1, 0, 1


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, dst | src << 4, off, imm)


def _prologue() -> list[bytes]:
    return [
        _insn(_LDX_MEM_W, _TYPE, _CTX, 0),
        _insn(_ALU32_AND_K, _TYPE, imm=0xFFFF),
        _insn(_LDX_MEM_W, _REQUESTED, _CTX, 0),
        _insn(_ALU32_RSH_K, _REQUESTED, imm=16),
        _insn(_LDX_MEM_W, _MAJOR, _CTX, 4),
        _insn(_LDX_MEM_W, _MINOR, _CTX, 8),
    ]


def _verdict(allow: bool) -> list[bytes]:
    return [_insn(_ALU64_MOV_K, _RESULT, imm=int(allow)), _insn(_EXIT)]


def _rule(rule: DeviceRule) -> list[bytes]:
    """The tests of one rule, each jumping past the rule's verdict unless its register holds the
    value, then the verdict."""
    tests: list[tuple[list[bytes], int, int]] = []  # (set-up, register, value)
    if rule.type != "a":
        tests.append(([], _TYPE, _TYPES[rule.type]))
    access = sum(_ACCESS[letter] for letter in set(rule.access))
    if access != _ALL_ACCESS:  # nothing requested beyond what the rule grants
        tests.append(([_insn(_ALU32_MOV_X, _SCRATCH, _REQUESTED),
                       _insn(_ALU32_AND_K, _SCRATCH, imm=_ALL_ACCESS & ~access)], _SCRATCH, 0))
    for register, value in ((_MAJOR, rule.major), (_MINOR, rule.minor)):
        if value is not None:
            tests.append(([], register, value))
    verdict = _verdict(True)
    code: list[bytes] = []
    for index, (setup, register, value) in enumerate(tests):
        rest = sum(len(later) + 1 for later, _, _ in tests[index + 1:]) + len(verdict)
        code += [*setup, _insn(_JNE_K, register, off=rest, imm=value)]
    return code + verdict


def program(rules: Sequence[DeviceRule]) -> bytes:
    """The instructions of a program allowing exactly ``rules`` (first match decides)."""
    code = _prologue()
    for rule in rules:
        code += _rule(rule)
    code += _verdict(False)
    return b"".join(code)


def attach(path: Path, instructions: bytes) -> None:
    """Load ``instructions`` and attach them to the cgroup directory ``path``."""
    prog = syscalls.bpf_prog_load(syscalls.BPF_PROG_TYPE_CGROUP_DEVICE, instructions,
                                  "ctr_devices")
    try:
        cgroup = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            syscalls.bpf_prog_attach(cgroup, prog, syscalls.BPF_CGROUP_DEVICE,
                                     syscalls.BPF_F_ALLOW_MULTI)
        finally:
            os.close(cgroup)
    finally:
        os.close(prog)


def apply(path: Path, rules: Sequence[DeviceRule] | None) -> None:
    """Allow the container exactly ``rules``; None leaves every device to it (privileged)."""
    if rules is not None:
        attach(path, program(rules))
