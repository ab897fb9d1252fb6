"""Seccomp profiles as users write them: docker/podman JSON files and OCI ``linux.seccomp``.

No kernel and no libseccomp here: what is read, what is refused, and with which words.
"""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest

from supervisor.model.capabilities import CAPABILITIES
from supervisor.model.seccomp.profile import Action, Condition, Match, Rule
from supervisor.runtime.seccomp import (
    DEFAULT,
    ProfileError,
    from_docker,
    from_oci,
    load_profile,
    summary,
)

ALLOW_READ = {"names": ["read"], "action": "SCMP_ACT_ALLOW"}


def _docker(**members: object) -> dict[str, object]:
    return {"defaultAction": "SCMP_ACT_ERRNO", **members}


def _cap(name: str) -> int:
    return 1 << CAPABILITIES[name]


def test_a_docker_profile_file_is_read_with_every_member(tmp_path: Path) -> None:
    path = tmp_path / "profile.json"
    path.write_text(json.dumps({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 38,
        "archMap": [{"architecture": "SCMP_ARCH_X86_64",
                     "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
                    {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": None}],
        "syscalls": [
            {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW", "comment": "io"},
            {"name": "personality", "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 0x7E020000, "valueTwo": 0,
                       "op": "SCMP_CMP_MASKED_EQ"}],
             "excludes": {"caps": ["CAP_SYS_ADMIN"], "arches": ["s390x"]}},
            {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}},
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
            {"names": ["uname"], "action": "SCMP_ACT_TRACE"},
        ],
    }))
    profile = load_profile(path)
    assert profile.default_action == Action("SCMP_ACT_ERRNO", errno.ENOSYS)
    assert profile.arch_map == (("SCMP_ARCH_X86_64", ("SCMP_ARCH_X86", "SCMP_ARCH_X32")),
                                ("SCMP_ARCH_AARCH64", ()))
    assert profile.arches_for("SCMP_ARCH_X86_64") == (
        "SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32")
    assert profile.arches_for("SCMP_ARCH_RISCV64") == ("SCMP_ARCH_RISCV64",)
    read_write, personality, clone, ptrace, mkdir, uname = profile.rules
    assert read_write == Rule(("read", "write"), Action("SCMP_ACT_ALLOW"))
    assert personality.names == ("personality",)
    assert personality.args == (Condition(0, "SCMP_CMP_EQ", 8),)
    assert clone.args == (Condition(0, "SCMP_CMP_MASKED_EQ", 0x7E020000, 0),)
    assert clone.excludes == Match(caps=("CAP_SYS_ADMIN",), arches=("s390x",))
    assert ptrace.includes == Match(min_kernel=(4, 8))
    assert mkdir.action == Action("SCMP_ACT_ERRNO", errno.EACCES)
    assert uname.action == Action("SCMP_ACT_TRACE", errno.EPERM)  # runc's default message data
    assert summary(profile) == str(path)


def test_the_oci_object_of_a_bundle_is_read() -> None:
    profile = from_oci({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "flags": ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
        "listenerPath": "",
        "syscalls": [{"names": ["keyctl"], "action": "SCMP_ACT_ERRNO"}],
    })
    assert profile.default_action == Action("SCMP_ACT_ALLOW")
    assert profile.architectures == ("SCMP_ARCH_X86_64", "SCMP_ARCH_X86")
    assert profile.arches_for("SCMP_ARCH_X86_64") == ("SCMP_ARCH_X86_64", "SCMP_ARCH_X86")
    assert profile.flags == ("SECCOMP_FILTER_FLAG_SPEC_ALLOW",)
    assert profile.rules == (Rule(("keyctl",), Action("SCMP_ACT_ERRNO", errno.EPERM)),)
    assert summary(profile) == "oci"


def test_summaries_for_status_displays() -> None:
    assert summary(None) == "unconfined"
    assert summary(DEFAULT) == "default"
    assert summary(from_docker(_docker())) == "custom"


@pytest.mark.parametrize(("document", "message"), [
    ([], "profile: expected an object, got an array"),
    ({"syscalls": []}, "defaultAction: missing"),
    (_docker(defaultActon="SCMP_ACT_ALLOW"), "defaultActon: unknown member"),
    ({"defaultAction": "SCMP_ACT_ALOW"}, "defaultAction: unknown action 'SCMP_ACT_ALOW'"),
    ({"defaultAction": "SCMP_ACT_NOTIFY"}, "defaultAction: SCMP_ACT_NOTIFY is not supported"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1},
     "defaultErrnoRet: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE return an errno"),
    (_docker(defaultErrnoRet=True), "defaultErrnoRet: expected an integer from 0 to 4095, got a "
                                    "boolean"),
    (_docker(listenerPath="/run/agent.sock"), "listenerPath: not supported"),
    (_docker(listenerMetadata=3), "listenerMetadata: expected a string"),
    (_docker(architectures=["SCMP_ARCH_X86_64", "SCMP_ARCH_Z80"]),
     "architectures[1]: unknown architecture 'SCMP_ARCH_Z80'"),
    (_docker(architectures=[], archMap=[]), "archMap: give either architectures or archMap"),
    (_docker(archMap=[{"subArchitectures": []}]), "archMap[0].architecture: missing"),
    (_docker(archMap=[{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["x86"]}]),
     "archMap[0].subArchitectures[0]: unknown architecture 'x86'"),
    (_docker(flags=["SECCOMP_FILTER_FLAG_NEW_LISTENER"]),
     "flags[0]: unknown or unsupported flag 'SECCOMP_FILTER_FLAG_NEW_LISTENER'"),
    (_docker(syscalls={"names": ["read"]}), "syscalls: expected an array, got an object"),
    (_docker(syscalls=[ALLOW_READ, "read"]), "syscalls[1]: expected an object, got 'read'"),
    (_docker(syscalls=[{"action": "SCMP_ACT_ALLOW"}]), "syscalls[0].names: missing or empty"),
    (_docker(syscalls=[{"names": [], "action": "SCMP_ACT_ALLOW"}]),
     "syscalls[0].names: missing or empty"),
    (_docker(syscalls=[{"names": ["read", ""], "action": "SCMP_ACT_ALLOW"}]),
     "syscalls[0].names[1]: expected a non-empty string, got an empty string"),
    (_docker(syscalls=[{"name": "read", "names": ["write"], "action": "SCMP_ACT_ALLOW"}]),
     "syscalls[0].name: give either name or names"),
    (_docker(syscalls=[{"names": ["read"]}]), "syscalls[0].action: missing"),
    (_docker(syscalls=[{"names": ["read"], "action": "SCMP_ACT_NOTIFY"}]),
     "syscalls[0].action: SCMP_ACT_NOTIFY is not supported"),
    (_docker(syscalls=[{"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": "1"}]),
     "syscalls[0].errnoRet: expected an integer from 0 to 4095, got '1'"),
    (_docker(syscalls=[{"names": ["read"], "action": "SCMP_ACT_ALLOW", "errnoRet": 1}]),
     "syscalls[0].errnoRet: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE return an errno, not "
     "SCMP_ACT_ALLOW"),
    (_docker(syscalls=[ALLOW_READ, ALLOW_READ, ALLOW_READ,
                       {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
                        "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_FOO"}]}]),
     "syscalls[3].args[0].op: unknown operator 'SCMP_CMP_FOO'"),
    (_docker(syscalls=[{"names": ["socket"], "action": "SCMP_ACT_ALLOW",
                        "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]),
     "syscalls[0].args[0].index: expected an integer from 0 to 5, got 6"),
    (_docker(syscalls=[{"names": ["socket"], "action": "SCMP_ACT_ALLOW",
                        "args": [{"index": 0, "value": -1, "op": "SCMP_CMP_EQ"}]}]),
     "syscalls[0].args[0].value: expected an integer from 0 to 18446744073709551615, got -1"),
    (_docker(syscalls=[{"names": ["socket"], "action": "SCMP_ACT_ALLOW",
                        "args": [{"index": 0, "value": 1.5, "op": "SCMP_CMP_EQ"}]}]),
     "syscalls[0].args[0].value: expected an integer"),
    (_docker(syscalls=[{"names": ["socket"], "action": "SCMP_ACT_ALLOW",
                        "args": [{"index": 0, "op": "SCMP_CMP_EQ"}]}]),
     "syscalls[0].args[0].value: missing"),
    (_docker(syscalls=[{"names": ["socket"], "action": "SCMP_ACT_ALLOW",
                        "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ", "val": 2}]}]),
     "syscalls[0].args[0].val: unknown member"),
    (_docker(syscalls=[{"names": ["mount"], "action": "SCMP_ACT_ALLOW",
                        "includes": {"caps": ["CAP_SYS_ADMN"]}}]),
     "syscalls[0].includes.caps[0]: unknown capability 'CAP_SYS_ADMN'"),
    (_docker(syscalls=[{"names": ["ptrace"], "action": "SCMP_ACT_ALLOW",
                        "excludes": {"minKernel": "four"}}]),
     "syscalls[0].excludes.minKernel: expected a kernel version like \"4.8\", got 'four'"),
    (_docker(syscalls=[{"names": ["ptrace"], "action": "SCMP_ACT_ALLOW",
                        "includes": {"kernel": "4.8"}}]),
     "syscalls[0].includes.kernel: unknown member"),
])
def test_every_bad_member_is_named(document: object, message: str) -> None:
    with pytest.raises(ProfileError) as refused:
        from_docker(document)
    assert str(refused.value).startswith(message)


@pytest.mark.parametrize(("document", "message"), [
    ({"defaultAction": "SCMP_ACT_ERRNO", "archMap": []}, "archMap: unknown member"),
    ({"defaultAction": "SCMP_ACT_ERRNO",
      "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_ALLOW",
                    "includes": {"caps": ["CAP_SYS_ADMIN"]}}]},
     "syscalls[0].includes: unknown member"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "listenerPath": "/run/seccomp-agent.sock"},
     "listenerPath: not supported"),
])
def test_the_oci_object_has_no_docker_extensions(document: object, message: str) -> None:
    with pytest.raises(ProfileError) as refused:
        from_oci(document)
    assert str(refused.value).startswith(message)


def test_a_profile_file_that_is_not_json_says_so_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"defaultAction": "SCMP_ACT_ERRNO",\n "syscalls": [}\n')
    with pytest.raises(ProfileError) as refused:
        load_profile(path)
    assert str(refused.value).startswith(f"{path}: not JSON: ")
    assert "line 2" in str(refused.value)


def test_a_bad_member_in_a_file_is_named_after_the_file(tmp_path: Path) -> None:
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(_docker(syscalls=[{"names": ["read"], "action": "ALLOW"}])))
    with pytest.raises(ProfileError) as refused:
        load_profile(path)
    assert str(refused.value) == f"{path}: syscalls[0].action: unknown action 'ALLOW'"


def test_a_missing_profile_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "missing.json"
    with pytest.raises(ProfileError) as refused:
        load_profile(path)
    assert str(refused.value).startswith(f"{path}: cannot read the profile: ")


def test_rules_are_chosen_as_moby_chooses_them() -> None:
    both = Rule(("mount",), Action("SCMP_ACT_ALLOW"),
                includes=Match(caps=("CAP_SYS_ADMIN", "CAP_SYS_CHROOT")))
    admin, chroot = _cap("CAP_SYS_ADMIN"), _cap("CAP_SYS_CHROOT")
    assert both.applies(admin | chroot, "amd64", (6, 1))
    assert not both.applies(admin, "amd64", (6, 1))  # every included capability is needed
    without = Rule(("clone",), Action("SCMP_ACT_ALLOW"),
                   excludes=Match(caps=("CAP_SYS_ADMIN", "CAP_BPF"), arches=("s390x",)))
    assert without.applies(chroot, "amd64", (6, 1))
    assert not without.applies(_cap("CAP_BPF"), "amd64", (6, 1))  # any excluded one excludes
    assert not without.applies(chroot, "s390x", (6, 1))
    only = Rule(("arch_prctl",), Action("SCMP_ACT_ALLOW"), includes=Match(arches=("amd64",)))
    assert only.applies(0, "amd64", (6, 1))
    assert not only.applies(0, "arm64", (6, 1))
    newer = Rule(("ptrace",), Action("SCMP_ACT_ALLOW"), includes=Match(min_kernel=(4, 8)))
    assert newer.applies(0, "amd64", (4, 8))
    assert not newer.applies(0, "amd64", (4, 7))
    older = Rule(("ptrace",), Action("SCMP_ACT_ALLOW"), excludes=Match(min_kernel=(4, 8)))
    assert older.applies(0, "amd64", (4, 7))
    assert not older.applies(0, "amd64", (5, 0))


def _allowed_by_default(capabilities: int, kernel: tuple[int, int] = (6, 1)) -> set[str]:
    return {name for rule in DEFAULT.rules if rule.applies(capabilities, "amd64", kernel)
            and rule.action == Action("SCMP_ACT_ALLOW") for name in rule.names}


def test_the_default_profile_keeps_dockers_refusals() -> None:
    """The calls docker's default refuses to every container, whatever its capabilities."""
    everything = (1 << len(CAPABILITIES)) - 1
    never = {"add_key", "keyctl", "request_key", "userfaultfd", "kexec_load", "kexec_file_load",
             "swapon", "swapoff", "pivot_root", "uselib", "nfsservctl", "ustat", "_sysctl",
             "sysfs", "create_module", "get_kernel_syms", "query_module", "move_pages",
             "migrate_pages", "vm86", "vm86old"}
    assert not never & _allowed_by_default(everything)


def test_the_default_profile_adds_calls_with_their_capabilities() -> None:
    base = _allowed_by_default(0)
    assert {"read", "openat", "execve", "fork", "fchmodat2", "futex_wait"} <= base
    assert not {"mount", "setns", "reboot", "init_module", "bpf", "chroot", "kcmp"} & base
    assert "ptrace" in base  # from 4.8 on, ptrace can no longer step around the filter
    assert "ptrace" not in _allowed_by_default(0, kernel=(4, 7))
    assert {"mount", "umount2", "setns", "unshare", "clone", "bpf"} <= _allowed_by_default(
        _cap("CAP_SYS_ADMIN"))
    assert "reboot" in _allowed_by_default(_cap("CAP_SYS_BOOT"))
    assert "ptrace" in _allowed_by_default(_cap("CAP_SYS_PTRACE"))
    assert {"init_module", "finit_module", "delete_module"} <= _allowed_by_default(
        _cap("CAP_SYS_MODULE"))
    assert "chroot" in _allowed_by_default(_cap("CAP_SYS_CHROOT"))
