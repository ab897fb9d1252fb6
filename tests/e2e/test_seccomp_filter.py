"""The compiled filter at work: in a forked child, installed, each probe refused or allowed.

Every refusal is shown next to the same call without the filter (where it succeeds or fails
otherwise), so a probe that could not succeed anyway proves nothing here. Each child is this
test's own fork, exits with ``os._exit`` and reports through a pipe; what the unfiltered probes
make (a user namespace, a key in the process keyring) dies with the child.
"""

from __future__ import annotations

import ctypes
import errno
import json
import mmap
import os
import platform
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from supervisor.model.capabilities import CAPABILITIES
from supervisor.runtime import syscalls
from supervisor.runtime.seccomp import (
    DEFAULT,
    Program,
    binding,
    bpf,
    cache_key,
    compile_profile,
    compiler,
    from_docker,
    from_oci,
    install,
)
from supervisor.runtime.security import DEFAULT_CAPABILITY_MASK, set_no_new_privs

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the unfiltered probes need root")

_libc = ctypes.CDLL(None, use_errno=True)
SYS_ADMIN = 1 << CAPABILITIES["CAP_SYS_ADMIN"]
AUDIT_ARCH_X86_64, AUDIT_ARCH_I386 = 0xC000003E, 0x40000003
JGE_K = 0x35  # libseccomp tests x32 numbers with jge, the stub with jset
KEY_SPEC_PROCESS_KEYRING = 0xFFFFFFFE  # -2
ADDR_NO_RANDOMIZE, PER_LINUX32 = 0x0040000, 0x0008


def _nr(name: str) -> int:
    number: int = binding.load().resolve_syscall(binding.load().Arch.NATIVE, name)
    return number


def _call(name_or_number: str | int, *args: int) -> str:
    """A raw system call: "ok", or the errno's name."""
    nr = _nr(name_or_number) if isinstance(name_or_number, str) else name_or_number
    result = _libc.syscall(ctypes.c_long(nr), *(ctypes.c_ulong(a) for a in args))
    return "ok" if result >= 0 else errno.errorcode[ctypes.get_errno()]


def _run(program: Program | None, probe: Callable[[], object]) -> object:
    """``probe()`` in a forked child under ``program`` (after no_new_privs), or unfiltered."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read)
            if program is not None:
                set_no_new_privs()
                install(program)
            report: object = {"result": probe()}
        except BaseException as e:  # the child must never return into pytest
            report = {"error": repr(e)}
        try:
            os.write(write, json.dumps(report).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    answer = json.loads(data)
    assert "error" not in answer, answer["error"]
    return answer["result"]


@pytest.fixture(scope="module")
def default() -> Program:
    return compile_profile(DEFAULT, DEFAULT_CAPABILITY_MASK)


def _instructions(code: bytes) -> list[tuple[int, int, int, int]]:
    return list(bpf.INSTRUCTION.iter_unpack(code))


def test_the_default_profile_compiles_with_the_compat_abis_covered(default: Program) -> None:
    assert 0 < default.instructions <= bpf.MAX_INSTRUCTIONS
    code = _instructions(default.code)
    arch_checks = {k for (op, _, _, k), before in zip(code[1:], code, strict=False)
                   if op == bpf.JEQ_K and before[0] == bpf.LD_W_ABS and before[3] == 4}
    if platform.machine() == "x86_64":
        assert {AUDIT_ARCH_X86_64, AUDIT_ARCH_I386} <= arch_checks
        # x32 calls are x86_64's arch with bit 30 of the number set: tested, not waved through
        assert any(op in (bpf.JSET_K, JGE_K) and k == 0x40000000 for op, _, _, k in code)
    assert (bpf.RET_K, 0, 0, bpf.SECCOMP_RET_ERRNO | errno.ENOSYS) in code


def test_programs_are_compiled_once_per_profile_and_relevant_capabilities(
        default: Program) -> None:
    net_admin = 1 << CAPABILITIES["CAP_NET_ADMIN"]  # no rule depends on it
    assert compile_profile(DEFAULT, DEFAULT_CAPABILITY_MASK) is default
    assert compile_profile(DEFAULT, DEFAULT_CAPABILITY_MASK | net_admin) is default
    with_admin = compile_profile(DEFAULT, DEFAULT_CAPABILITY_MASK | SYS_ADMIN)
    assert with_admin.key != default.key and with_admin.code != default.code
    same = from_docker({"defaultAction": "SCMP_ACT_ERRNO",
                        "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}, "a.json")
    again = from_docker({"defaultAction": "SCMP_ACT_ERRNO",
                         "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}, "b.json")
    assert cache_key(same, 0) == cache_key(again, 0)  # the content counts, not the file name
    assert cache_key(same, 0) != cache_key(DEFAULT, 0)
    kept = Program(default.code, default.key)  # as the lead's on-disk cache would rebuild it
    assert kept.code == default.code and kept.instructions == default.instructions


def test_the_kernel_reports_the_filter(default: Program) -> None:
    def status() -> list[str]:
        return [line for line in Path("/proc/self/status").read_text().splitlines()
                if line.startswith("Seccomp")]
    assert _run(None, status) == ["Seccomp:\t0", "Seccomp_filters:\t0"]
    assert _run(default, status) == ["Seccomp:\t2", "Seccomp_filters:\t1"]


def test_no_user_namespace_without_cap_sys_admin(default: Program) -> None:
    def new_user_namespace() -> str:
        return _call("unshare", syscalls.CLONE_NEWUSER)
    assert _run(None, new_user_namespace) == "ok"
    assert _run(default, new_user_namespace) == "EPERM"
    assert _run(default, lambda: _call("unshare", 0x400)) == "ok"  # CLONE_FILES: no namespace
    privileged = compile_profile(DEFAULT, DEFAULT_CAPABILITY_MASK | SYS_ADMIN)
    assert _run(privileged, new_user_namespace) == "ok"


def test_the_kernel_keyrings_are_out_of_reach(default: Program) -> None:
    def keyring() -> list[str]:
        return [_call("keyctl", 0, KEY_SPEC_PROCESS_KEYRING, 1),  # KEYCTL_GET_KEYRING_ID
                _call("add_key", ctypes.addressof(_USER), ctypes.addressof(_DESCRIPTION),
                      ctypes.addressof(_PAYLOAD), 1, KEY_SPEC_PROCESS_KEYRING)]
    assert _run(None, keyring) == ["ok", "ok"]
    assert _run(default, keyring) == ["EPERM", "EPERM"]


_USER = ctypes.create_string_buffer(b"user")
_DESCRIPTION = ctypes.create_string_buffer(b"ctr-seccomp-test")
_PAYLOAD = ctypes.create_string_buffer(b"x")


def _clone(flags: int) -> str:
    """clone(2) as fork does it, plus ``flags``; the new process leaves at once."""
    pid = _libc.syscall(ctypes.c_long(_nr("clone")), ctypes.c_ulong(flags | signal.SIGCHLD),
                        ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0),
                        ctypes.c_ulong(0))
    if pid == 0:
        os._exit(0)
    if pid < 0:
        return errno.errorcode[ctypes.get_errno()]
    os.waitpid(pid, 0)
    return "ok"


def test_clone_makes_no_namespaces_but_fork_and_threads_work(default: Program) -> None:
    def new_mount_namespace() -> str:
        return _clone(syscalls.CLONE_NEWNS)
    assert _run(None, new_mount_namespace) == "ok"
    assert _run(default, new_mount_namespace) == "EPERM"

    def fork_and_thread() -> list[object]:
        pid = os.fork()
        if pid == 0:
            os._exit(7)
        results: list[object] = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])]
        thread = threading.Thread(target=lambda: results.append("thread ran"))
        thread.start()  # glibc tries clone3, gets ENOSYS, and falls back to clone
        thread.join()
        return results
    assert _run(default, fork_and_thread) == [7, "thread ran"]


def test_clone3_answers_enosys_so_libcs_fall_back(default: Program) -> None:
    def clone3() -> str:
        return _call("clone3", 0, 0)  # no clone_args: the kernel says EINVAL
    assert _run(None, clone3) == "EINVAL"
    assert _run(default, clone3) == "ENOSYS"


def test_personality_only_as_docker_allows_it(default: Program) -> None:
    def personas() -> list[str]:
        return [_call("personality", 0xFFFFFFFF), _call("personality", PER_LINUX32),
                _call("personality", ADDR_NO_RANDOMIZE)]
    assert _run(None, personas) == ["ok", "ok", "ok"]
    assert _run(default, personas) == ["ok", "ok", "EPERM"]


def test_mount_needs_cap_sys_admin_in_the_set(default: Program, tmp_path: Path) -> None:
    source, target = ctypes.create_string_buffer(b"none"), ctypes.create_string_buffer(
        os.fsencode(tmp_path / "missing" / "target"))
    fstype = ctypes.create_string_buffer(b"tmpfs")

    def mount() -> str:  # nothing can be mounted: the target does not exist
        return _call("mount", ctypes.addressof(source), ctypes.addressof(target),
                     ctypes.addressof(fstype), 0, 0)
    assert _run(None, mount) == "ENOENT"
    assert _run(default, mount) == "EPERM"
    assert _run(compile_profile(DEFAULT, DEFAULT_CAPABILITY_MASK | SYS_ADMIN), mount) == "ENOENT"


def test_calls_newer_than_the_profile_get_enosys(default: Program) -> None:
    code, limits = compiler.libseccomp_program(DEFAULT, DEFAULT_CAPABILITY_MASK)
    newer = max(highest for highest, _ in limits.values() if highest is not None) + 1

    def unknown() -> list[str]:
        return [_call(newer), _call(1023)]
    assert _run(default, unknown) == ["ENOSYS", "ENOSYS"]
    without_stub = Program(code, "libseccomp alone")
    assert _run(without_stub, unknown) == ["EPERM", "EPERM"]


def test_ordinary_work_goes_on(default: Program, tmp_path: Path) -> None:
    def work() -> list[object]:
        note = tmp_path / "note"
        note.write_text("written under the filter\n")
        true = subprocess.run(["/bin/true"], check=False).returncode
        cat = subprocess.run(["/bin/cat", str(note)], capture_output=True, text=True,
                             check=False).stdout
        return [note.read_text(), true, cat]
    expected = ["written under the filter\n", 0, "written under the filter\n"]
    assert _run(None, work) == expected
    assert _run(default, work) == expected


def test_an_oci_profile_with_flags_is_loaded() -> None:
    profile = from_oci({"defaultAction": "SCMP_ACT_ALLOW",
                        "flags": ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
                        "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_ERRNO",
                                      "errnoRet": errno.EACCES}]})
    program = compile_profile(profile, DEFAULT_CAPABILITY_MASK)
    assert program.flags == 4

    def uname() -> list[str]:
        return [_call("uname", ctypes.addressof(ctypes.create_string_buffer(512))),
                _call("getpid")]
    assert _run(None, uname) == ["ok", "ok"]
    assert _run(program, uname) == ["EACCES", "ok"]


def test_the_kernel_refuses_a_filter_without_no_new_privs_or_cap_sys_admin(
        default: Program) -> None:
    def without_privileges() -> str:
        effective, permitted, inheritable = syscalls.capget()
        syscalls.capset(effective & ~SYS_ADMIN, permitted, inheritable)
        try:
            install(default)
        except OSError as e:
            return errno.errorcode[e.errno or 0]
        return "installed"
    assert _run(None, without_privileges) == "EACCES"


@pytest.fixture(scope="module")
def i386_call() -> Iterator[Callable[[int, int], int]]:
    """A 32-bit system call from this 64-bit process: ``int 0x80``, which the kernel runs (and
    seccomp sees) as the i386 ABI. Returns eax: a result, or minus an errno."""
    if platform.machine() != "x86_64":
        pytest.skip("the i386 compat ABI exists on x86_64 only")
    code = (b"\x53"  # push rbx (callee-saved)
            b"\x89\xf8"  # mov eax, edi: the number
            b"\x89\xf3"  # mov ebx, esi: the first argument
            b"\x31\xc9"  # xor ecx, ecx: the second, 0
            b"\xcd\x80"  # int 0x80
            b"\x5b\xc3")  # pop rbx; ret
    page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    page.write(code)
    address = ctypes.addressof(ctypes.c_char.from_buffer(page))
    call = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_uint, ctypes.c_uint)(address)
    if call(_i386("getpid"), 0) != os.getpid():
        pytest.skip("this kernel runs no i386 system calls (ia32_emulation=off)")
    yield call
    del call


def _i386(name: str) -> int:
    number: int = binding.load().resolve_syscall(binding.load().Arch.X86, name)
    return number


def _name(result: int) -> str:
    return "ok" if result >= 0 else errno.errorcode[-result]


def test_the_i386_abi_is_filtered_too(default: Program,
                                      i386_call: Callable[[int, int], int]) -> None:
    def probes() -> list[str]:
        return [_name(i386_call(_i386("getpid"), 0)),
                _name(i386_call(_i386("unshare"), syscalls.CLONE_NEWUSER)),
                _name(i386_call(_i386("clone3"), 0)),
                _name(i386_call(1023, 0))]
    assert _run(None, probes) == ["ok", "ok", "EINVAL", "ENOSYS"]
    assert _run(default, probes) == ["ok", "EPERM", "ENOSYS", "ENOSYS"]


def test_a_filter_without_the_i386_abi_kills_its_calls(
        i386_call: Callable[[int, int], int]) -> None:
    """Why the compat ABIs are in the filter: a call through an ABI the filter does not list
    gets libseccomp's bad-architecture action, and a rule on x86_64 alone would be bypassed."""
    only_64 = compile_profile(from_docker({
        "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["unshare"], "action": "SCMP_ACT_ERRNO"}]}), 0)
    assert _run(only_64, lambda: _call("getpid")) == "ok"
    assert _run(only_64, lambda: _name(i386_call(_i386("getpid"), 0))) == "killed by SIGSYS"
