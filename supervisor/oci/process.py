"""A config.json's ``process`` object, which ``ctr-runtime exec --process FILE`` reads too: the
command, its environment, user and limits, through the model's parsers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from supervisor.model import capabilities as caps
from supervisor.model import command as commands
from supervisor.model.errors import Invalid
from supervisor.model.rlimits import rlimit, rlimit_amount, rlimit_type
from supervisor.model.spec import CapabilitySets, ProcessSettings
from supervisor.model.values import absolute_path, boolean, integer, items
from supervisor.oci.document import Obj

KNOWN = ("terminal", "consoleSize", "cwd", "env", "args", "commandLine", "rlimits",
         "apparmorProfile", "capabilities", "noNewPrivileges", "oomScoreAdj", "scheduler",
         "selinuxLabel", "ioPriority", "execCPUAffinity", "user")
_USER = ("uid", "gid", "umask", "additionalGids", "username")
_CAPABILITY_SETS = ("bounding", "effective", "inheritable", "permitted", "ambient")
_id = integer(0, 2**32 - 2)  # (uid_t) -1 means "unchanged" to the kernel


@dataclass(frozen=True)
class Process:
    """What ``process`` asks for; ``capabilities`` None: the member is absent."""

    args: tuple[str, ...]
    environment: tuple[tuple[str, str], ...]
    cwd: str
    user: str  # uid:gid
    settings: ProcessSettings
    capabilities: CapabilitySets | None
    no_new_privileges: bool


def _capability_set(value: Any) -> int:
    if not isinstance(value, list):
        raise Invalid('expected an array of capabilities, e.g. ["CAP_KILL"]')
    return caps.mask(tuple(items(caps.capability, value)))


def _capabilities(obj: Obj) -> CapabilitySets:
    return CapabilitySets(**{name: obj.value_or(name, _capability_set, 0)
                           for name in _CAPABILITY_SETS})


def _console_size(obj: Obj) -> tuple[int, int]:
    dimension = integer(0, 65535)
    return obj.required("height", dimension), obj.required("width", dimension)


def _environment(value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, list):
        raise Invalid('expected an array of "NAME=VALUE" strings')
    return tuple(items(commands.assignment, value))


def parse(obj: Obj) -> Process:
    """``process``: the Linux members; those of other systems and of confinement ctr does not
    have (AppArmor, SELinux, schedulers) are errors when set."""
    obj.unsupported("commandLine", "a Windows command line")
    obj.unsupported("apparmorProfile", "AppArmor")
    obj.unsupported("selinuxLabel", "an SELinux label")
    obj.unsupported("scheduler", "a scheduling policy")
    obj.unsupported("ioPriority", "an I/O priority")
    obj.unsupported("execCPUAffinity", "a CPU affinity at exec")
    user = obj.obj("user", _USER)
    if user is None:
        raise obj.fail("user", "missing: the runtime spec requires it on Linux")
    user.unsupported("username", "a Windows user name")
    uid, gid = user.required("uid", _id), user.required("gid", _id)
    size = obj.obj("consoleSize", ("height", "width"))
    rlimits = []
    for entry in obj.objects("rlimits", ("type", "soft", "hard")):
        kind = entry.required("type", rlimit_type)
        soft, hard = (entry.required(key, rlimit_amount) for key in ("soft", "hard"))
        try:
            rlimits.append(rlimit(kind, soft, hard))
        except Invalid as exc:
            raise entry.fail("soft", str(exc)) from None
    if len({limit.type for limit in rlimits}) != len(rlimits):
        raise obj.fail("rlimits", "a limit is given twice (the spec requires each type once)")
    capabilities = obj.obj("capabilities", _CAPABILITY_SETS)
    args = obj.required("args", commands.command)
    environment = obj.value_or("env", _environment, ())
    try:
        commands.check_exec_size(args, environment)
    except Invalid as exc:
        raise obj.fail("env", str(exc)) from None
    return Process(
        args=args,
        environment=environment,
        cwd=obj.required("cwd", absolute_path),
        user=f"{uid}:{gid}",
        settings=ProcessSettings(
            rlimits=tuple(rlimits),
            umask=user.get("umask", integer(0, 0o777)),
            oom_score_adj=obj.get("oomScoreAdj", integer(-1000, 1000)),
            groups=tuple(user.get("additionalGids", lambda v: items(_id, _list(v))) or ()),
            terminal=obj.value_or("terminal", boolean, False),
            console_size=None if size is None else _console_size(size),
        ),
        capabilities=None if capabilities is None else _capabilities(capabilities),
        no_new_privileges=obj.value_or("noNewPrivileges", boolean, False),
    )


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise Invalid("expected an array of group ids")
    return value
