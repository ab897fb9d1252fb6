"""Run a command inside a running container (``ctrctl exec``), as ``runc exec`` and nsenter do.

Caller (one thread of it)                    the new process
open /proc/T/ns/*, /proc/T/root
setns(pid): for this thread's children only
fork ──────────────────────────────────────> join T's cgroups (host paths, before the cgroup
setns(pid) back to our own                   namespace), setns user, cgroup, ipc, uts, net,
                                             mnt (those not ours); fchdir + chroot(".") into
                                             T's root; resolve the user, harden as PID 1
                                             was, exec
<── EOF (status pipe closed on exec) or "ERR message" ──

A pid namespace applies only to the children of the thread that joins it, so the caller's thread
joins the target's just for the fork and then goes back: the new process is the caller's own
child, in the container's pid namespace, with no intermediate and no subreaper. Every namespace
file and the root are opened before any is joined: after setns(mnt) /proc is the container's, in
which T has another pid, and the root that setns(mnt) gives is the namespace's, not T's own.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import PurePosixPath
from typing import NoReturn

from supervisor.model.spec import ProcessSettings
from supervisor.runtime import console as consoles
from supervisor.runtime import process, procsettings, security, syscalls, users

# Joined by the new process, in this order (pid by the caller, for the fork).
_JOINED = ("user", "cgroup", "ipc", "uts", "net", "mnt")


class NotRunningError(process.SpawnError):
    """The target process is gone (or a zombie): there is no container to enter."""


@dataclass(frozen=True)
class _Target:
    """Open handles on what the new process enters."""

    namespaces: tuple[tuple[int, int], ...]  # (fd, CLONE_NEW*) in join order
    pid_namespace: int
    root: int
    cgroup_procs: tuple[str, ...]


def spawn_in(target_pid: int, argv: Sequence[str], *, confinement: security.Confinement,
             user: str = "root", environment: Mapping[str, str] | None = None,
             working_dir: str = "/", stdio: tuple[int, int, int] | None = None,
             tty: bool = False, own_group: bool = False,
             settings: ProcessSettings | None = None, pass_fds: tuple[int, ...] = (),
             console: int | None = None) -> int:
    """Start argv inside every namespace of the container whose PID 1 is target_pid (as seen from
    the host) and inside its cgroups; return the new process's host pid, a child of the caller
    (wait for it with os.waitpid; use supervisor.runtime.process.exit_code for the status).

    ``confinement``: what the container's own processes run under (its capabilities, no_new_privs
    and system-call filter: ``security.confinement`` of its spec), or ``security.PRIVILEGED``.
    ``stdio``: the fds for 0, 1 and 2 (None: the caller's). ``tty``: stdin is a terminal (a pty
    slave) that becomes the controlling terminal of the process, in a session of its own.
    ``own_group``: the process leads a process group of its own from its first instruction on,
    so whatever it starts is killed with it (``os.killpg``), as a health check's (not with tty).
    ``settings``: its rlimits, umask and groups (ctr-runtime exec); ``pass_fds``: the caller's
    fds it gets as 3, 4, ...; ``console``: a unix socket to send the master end of a terminal
    made inside the container over (runtime/console), which becomes the process's stdio.
    Raises NotRunningError if target_pid is not running, SpawnError if the command cannot be
    started inside (not found, unknown user, missing working directory, frozen container).
    """
    if not argv:
        raise ValueError("no command to run")
    plan = process.LaunchPlan(argv=tuple(argv), namespaces=0, rootfs=None,
                              confinement=confinement, environment=dict(environment or {}),
                              user=user, working_dir=working_dir, stdio=stdio, tty=tty,
                              settings=settings or ProcessSettings(), pass_fds=pass_fds)
    with _open(target_pid) as target:
        plan = replace(plan, cgroup_procs=target.cgroup_procs)
        status_r, status_w = os.pipe2(os.O_CLOEXEC)
        try:
            pid = _fork_into(target.pid_namespace)
        except BaseException:
            os.close(status_r)
            os.close(status_w)
            raise
        if pid == 0:
            _child(target, plan, status_w, own_group, console)
        os.close(status_w)
    status = process.read_all(status_r).decode(errors="replace")
    os.close(status_r)
    if status.startswith("ERR "):
        os.waitpid(pid, 0)
        raise process.SpawnError(status[4:].strip())
    return pid


@contextlib.contextmanager
def _open(pid: int) -> Iterator[_Target]:
    with contextlib.ExitStack() as stack:

        def open_fd(path: str, flags: int = os.O_RDONLY) -> int:
            try:
                fd = os.open(path, flags | os.O_CLOEXEC)
            except (FileNotFoundError, ProcessLookupError):  # gone, or a zombie
                raise NotRunningError(f"no running process {pid} to enter") from None
            stack.callback(os.close, fd)
            return fd

        namespaces = []
        for kind in _JOINED:
            fd = open_fd(f"/proc/{pid}/ns/{kind}")
            theirs, own = os.fstat(fd), os.stat(f"/proc/self/ns/{kind}")
            # One the container shares with us (a bundle may keep the host's) is not joined:
            # setns into one's own user namespace is refused (EINVAL), and into another kept
            # the host's, once in the container's user namespace (EPERM).
            if (theirs.st_dev, theirs.st_ino) != (own.st_dev, own.st_ino):
                namespaces.append((fd, syscalls.NAMESPACE_FLAGS[kind]))
        yield _Target(
            namespaces=tuple(namespaces),
            pid_namespace=open_fd(f"/proc/{pid}/ns/pid"),
            root=open_fd(f"/proc/{pid}/root", os.O_RDONLY | os.O_DIRECTORY),
            cgroup_procs=tuple(_cgroup_procs(pid)),
        )


def _fork_into(pid_namespace: int) -> int:
    """fork() with the child in ``pid_namespace``; this thread's later children stay in ours."""
    ours = os.open("/proc/thread-self/ns/pid_for_children", os.O_RDONLY | os.O_CLOEXEC)
    pid = -1
    try:
        syscalls.setns(pid_namespace, syscalls.CLONE_NEWPID)
        pid = os.fork()
        return pid
    finally:
        if pid != 0:  # the caller, also when fork failed
            syscalls.setns(ours, syscalls.CLONE_NEWPID)
        os.close(ours)


def _child(target: _Target, plan: process.LaunchPlan, status_w: int,
           own_group: bool, console: int | None) -> NoReturn:
    try:
        if own_group:
            os.setpgid(0, 0)
        # Not dumpable before it enters anything: see process.exec_command.
        syscalls.prctl(syscalls.PR_SET_DUMPABLE, 0)
        syscalls.close_inherited((status_w, target.pid_namespace, target.root,
                                 *(fd for fd, _ in target.namespaces), *(plan.stdio or ()),
                                 *plan.pass_fds, *([] if console is None else [console])))
        process.enter_namespaces(plan)  # the cgroups (before the cgroup namespace), and stdio
        for fd, nstype in target.namespaces:
            syscalls.setns(fd, nstype)
        os.fchdir(target.root)
        os.chroot(".")
        syscalls.close_inherited((status_w, *plan.pass_fds, *([] if console is None
                                                              else [console])))
        identity = procsettings.identity(users.resolve(plan.user), plan.settings)
        process.enter_working_dir(plan.working_dir, create=False)
        if console is not None:
            consoles.attach(console, plan.settings.console_size, console=False)
        process.exec_command(plan, identity)
    except BaseException as exc:
        process.child_fail(status_w, exc)


# -- cgroups --------------------------------------------------------------------------------------

_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")


@dataclass(frozen=True)
class _CgroupMount:
    version: int
    options: frozenset[str]  # super options: the controllers (or name=) of a v1 hierarchy
    root: PurePosixPath  # the cgroup mounted there, relative to our cgroup namespace
    mountpoint: str


def _cgroup_mounts(mountinfo: str) -> list[_CgroupMount]:
    found = []
    for line in mountinfo.splitlines():
        fields, _, tail = line.partition(" - ")
        fstype, _source, options = tail.split()[:3]
        if fstype in ("cgroup", "cgroup2"):
            root, mountpoint = (_OCTAL_ESCAPE.sub(lambda m: chr(int(m[1], 8)), field)
                                for field in fields.split()[3:5])
            found.append(_CgroupMount(2 if fstype == "cgroup2" else 1,
                                      frozenset(options.split(",")), PurePosixPath(root),
                                      mountpoint))
    return found


def cgroup_directories(membership: str, mountinfo: str) -> list[str]:
    """The directory of each cgroup in ``membership`` (a /proc/PID/cgroup) under the mounts of
    ``mountinfo`` (our /proc/self/mountinfo), so whatever made the cgroups (cgroupfs v1 or v2, a
    systemd scope) they are found as they are. Hierarchies not mounted here are skipped if the
    process is in their root cgroup, an error otherwise (it would escape their limits)."""
    mounts = _cgroup_mounts(mountinfo)
    directories = []
    for line in membership.splitlines():
        hierarchy, controllers, path = line.split(":", 2)
        cgroup = PurePosixPath(path)
        wanted = set(controllers.split(","))
        mount = next((m for m in mounts
                      if (m.version == 2 if hierarchy == "0" else wanted <= m.options)
                      and cgroup.is_relative_to(m.root)), None)
        if mount is not None:
            directories.append(os.path.join(mount.mountpoint, cgroup.relative_to(mount.root)))
        elif path != "/":
            raise process.SpawnError(f"cgroup {controllers or 'v2'}:{path} is not reachable: "
                                     "its hierarchy is not mounted here")
    return directories


def _cgroup_procs(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            membership = f.read()
    except (FileNotFoundError, ProcessLookupError):
        raise NotRunningError(f"no running process {pid} to enter") from None
    with open("/proc/self/mountinfo") as f:
        directories = cgroup_directories(membership, f.read())
    for directory in directories:
        _refuse_frozen(directory)
    return [os.path.join(directory, "cgroup.procs") for directory in directories]


def _refuse_frozen(directory: str) -> None:
    """A process joining a frozen cgroup would freeze before exec, and the caller with it."""
    for name, thawed in (("freezer.state", "THAWED"), ("cgroup.freeze", "0")):
        with contextlib.suppress(FileNotFoundError), open(os.path.join(directory, name)) as f:
            if f.read().strip() != thawed:
                raise process.SpawnError("the container is frozen: thaw it first")
