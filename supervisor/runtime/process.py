"""The spawn handshake: fork, enter the namespaces, let PID 1 build its root, exec on the go.

Parent                          intermediate                   PID 1 (in the new pid namespace)
fork ─────────────────────────> join cgroups, setns, unshare
                                fork ─────────────────────────> assemble rootfs, pivot_root,
<── PID 1's pid ─────────────── exit                            hostname, resolve user,
network, state (concurrently                                    wait for "go"
with PID 1's mounts)
"go" ──────────────────────────────────────────────────────────> drop capabilities, exec
<── EOF (status pipe closed on exec) or "ERR message" ──────────

The intermediate exists because a new pid namespace applies only to children of the process that
unshares it; the parent is a child subreaper, so PID 1 becomes the parent's child and its exit
status stays collectable. The status pipe is close-on-exec, so EOF without a message means exec
succeeded.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import termios
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field

from supervisor.runtime import mounts, security, syscalls, users

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class SpawnError(RuntimeError):
    """The container could not be started; the message is the failing step's own."""


@dataclass(frozen=True)
class LaunchPlan:
    """Everything PID 1 needs, decided by the parent before fork."""

    argv: tuple[str, ...]
    namespaces: int  # CLONE_NEW* flags for new namespaces
    rootfs: mounts.RootfsPlan | None  # None: share the mount namespace joined (no new root)
    cgroup_procs: tuple[str, ...] = ()
    joins: tuple[tuple[str, int], ...] = ()  # (/proc/PID/ns/KIND, CLONE_NEW*) to setns into
    environment: Mapping[str, str] = field(default_factory=dict)
    user: str = "root"
    working_dir: str = "/"
    hostname: str | None = None
    privileged: bool = False
    stdio: tuple[int, int, int] | None = None  # fds for 0, 1, 2; None: inherit the parent's
    tty: bool = False  # stdin is a terminal to become the controlling terminal
    die_with_parent: bool = False


def _become_subreaper() -> None:
    syscalls.prctl(syscalls.PR_SET_CHILD_SUBREAPER, 1)


def _write(fd: int, text: str) -> None:
    os.write(fd, text.encode())


def _child_fail(status_w: int, exc: BaseException) -> None:
    message = str(exc) or type(exc).__name__
    if os.environ.get("CTR_DEBUG"):
        message += "\n" + traceback.format_exc()
    try:
        _write(status_w, f"ERR {message}\n")
    finally:
        os._exit(127)


def _environment(plan: LaunchPlan, identity: users.Identity) -> dict[str, str]:
    env = {"PATH": DEFAULT_PATH, "HOME": identity.home, "container": "ctr"}
    if plan.hostname:
        env["HOSTNAME"] = plan.hostname
    if plan.tty:
        env["TERM"] = os.environ.get("TERM", "xterm")
    env.update(plan.environment)
    return env


def _init(plan: LaunchPlan, go_r: int, status_w: int) -> None:
    """PID 1 before exec: everything that can overlap the parent's network set-up comes first."""
    if plan.rootfs:
        mounts.assemble(plan.rootfs)
        mounts.pivot(plan.rootfs.root)
    if plan.hostname and plan.namespaces & syscalls.CLONE_NEWUTS:
        socket.sethostname(plan.hostname)
    identity = users.resolve(plan.user)
    os.makedirs(plan.working_dir, exist_ok=True)
    os.chdir(plan.working_dir)
    env = _environment(plan, identity)
    if os.read(go_r, 1) != b"G":
        os._exit(127)  # the parent gave up on us
    os.close(go_r)
    if plan.die_with_parent:
        syscalls.prctl(syscalls.PR_SET_PDEATHSIG, signal.SIGKILL)
    if plan.tty:
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    if not plan.privileged:
        security.drop_capabilities()
    security.switch_user(identity)
    if not plan.privileged:
        security.set_no_new_privs()
    try:
        os.execvpe(plan.argv[0], list(plan.argv), env)
    except OSError as exc:
        raise SpawnError(f"exec {plan.argv[0]}: {exc.strerror}") from exc


def _intermediate(plan: LaunchPlan, go_r: int, status_w: int, pid_w: int) -> None:
    for path in plan.cgroup_procs:
        with open(path, "w") as f:
            f.write("0")
    if plan.stdio:
        for target, fd in enumerate(plan.stdio):
            os.dup2(fd, target)
    for path, nstype in plan.joins:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        syscalls.setns(fd, nstype)
        os.close(fd)
    syscalls.unshare(plan.namespaces)
    pid = os.fork()
    if pid == 0:
        try:
            os.close(pid_w)
            _init(plan, go_r, status_w)
        except BaseException as exc:
            _child_fail(status_w, exc)
    _write(pid_w, str(pid))
    os._exit(0)


class Child:
    """PID 1 of a container between fork and exec, seen from the parent."""

    def __init__(self, pid: int, go_w: int, status_r: int) -> None:
        self.pid = pid
        self._go_w = go_w
        self._status_r = status_r


    def release(self) -> None:
        """Let PID 1 exec; return once it has, or raise with the reason it could not."""
        try:
            os.write(self._go_w, b"G")
        except BrokenPipeError:
            pass  # it died already; its message is in the status pipe
        finally:
            os.close(self._go_w)
        status = _read_all(self._status_r).decode(errors="replace")
        os.close(self._status_r)
        if status.startswith("ERR "):
            self._reap()
            raise SpawnError(status[4:].strip())

    def failure(self) -> str | None:
        """What PID 1 reported if it already failed (its death explains the parent's error)."""
        os.set_blocking(self._status_r, False)
        try:
            status = os.read(self._status_r, 65536).decode(errors="replace")
        except BlockingIOError:
            return None
        finally:
            os.set_blocking(self._status_r, True)
        return status[4:].strip() if status.startswith("ERR ") else None

    def abort(self) -> None:
        """Kill PID 1 before it ran the command (set-up failed in the parent)."""
        for fd in (self._go_w, self._status_r):
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        self._reap()

    def _reap(self) -> None:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 4096):
        chunks.append(chunk)
    return b"".join(chunks)


def spawn(plan: LaunchPlan) -> Child:
    """Start PID 1 in new namespaces; it builds its root while the caller sets up the network."""
    _become_subreaper()
    go_r, go_w = os.pipe2(os.O_CLOEXEC)
    status_r, status_w = os.pipe2(os.O_CLOEXEC)
    pid_r, pid_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        try:
            os.close(go_w)
            os.close(status_r)
            os.close(pid_r)
            _intermediate(plan, go_r, status_w, pid_w)
        except BaseException as exc:
            _child_fail(status_w, exc)
    for fd in (go_r, status_w, pid_w):
        os.close(fd)
    os.waitpid(pid, 0)
    pid_text = _read_all(pid_r)
    os.close(pid_r)
    if not pid_text:  # the intermediate failed before it could fork PID 1
        message = _read_all(status_r).decode(errors="replace")
        os.close(status_r)
        os.close(go_w)
        raise SpawnError(message.removeprefix("ERR ").strip() or "container set-up failed")
    return Child(int(pid_text), go_w, status_r)


def exit_code(status: int) -> int:
    """Shell convention: the exit status, or 128 + signal number for a killed process."""
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code
