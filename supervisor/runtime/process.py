"""The spawn handshake: fork, enter the namespaces, let PID 1 build its root, exec on the go.

Parent                      intermediate (becomes the shim)     PID 1 (in the new pid namespace)
fork ─────────────────────> setsid, unshare pid namespace
                            fork ─────────────────────────────> join cgroups, unshare the rest,
<── PID 1's pid ──────────── wait for PID 1 ...                  assemble rootfs, pivot_root,
network, state (concurrently                                    hostname, resolve user,
with PID 1's mounts)                                            wait for "go"
"go" ──────────────────────────────────────────────────────────> drop capabilities, exec
<── EOF (status pipe closed on exec) or "ERR message" ──────────
                            ... PID 1 exits: record its status,
                            exit with it

A new pid namespace applies only to children of the process that unshares it, so an intermediate
is needed; it then execs ctr-shim (shim/ctr-shim.c), which stays as PID 1's parent, outside the
container's namespaces and cgroup, as conmon or containerd-shim do: it collects PID 1's exit status,
writes it to the container's state directory and exits with it. It is a small C program because
one runs per container; a forked Python process would keep a private copy of every page its parent
writes afterwards. The caller waits for the shim (its
child); a restarted ctrd that adopted the container watches the shim through a pidfd and reads the
recorded status, which it could not collect itself. PID 1 dies with its shim (PDEATHSIG), so a
container never outlives the process that records how it ended. The status pipe is close-on-exec:
EOF without a message means exec succeeded.

With a user namespace (``LaunchPlan.userns``; why and how in userns.py) the handshake has one
more step, on a socket pair:

Parent                      intermediate                        PID 1
                            unshare user namespace
<── "U" ─────────────────── unshare pid namespace, fork ──────> network namespace, ready,
uid_map, gid_map; detached                                      cgroups (as the host's uid 0),
mounts of the host sources                                      unshare the rest, open its own
"M" + their descriptors ───────────────────────────────────────> directories; become container
                                                                root; attach the sources, ...

The intermediate creates the user namespace so that the pid namespace it creates is owned by it
(container root could not mount /proc otherwise). The parent's step overlaps the fork of PID 1
and its network namespace; PID 1 waits for it only when it needs the maps.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import select
import signal
import socket
import termios
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import NoReturn, Protocol

from supervisor.model import defaults
from supervisor.model.idmap import IdMap
from supervisor.model.spec import ProcessSettings
from supervisor.runtime import mounts, procsettings, security, syscalls, sysctl, userns, users
from supervisor.runtime.logwriter import LogPipes, LogTarget
from supervisor.runtime.network import loopback

_SHIM_NAME = "ctr-shim"
_INIT_NAME = "ctr-init"
_PASSED_START = 3  # the first fd passed (sd_listen_fds' SD_LISTEN_FDS_START)
_LIBEXEC = (os.path.join(os.path.dirname(__file__), "libexec"), "/usr/libexec/ctr")
_READY = "+"
_CAP_KILL = 5


class SpawnError(RuntimeError):
    """The container could not be started; the message is the failing step's own."""


class Steps(Protocol):
    """What a caller adds at fixed points of PID 1's set-up (an OCI bundle's lifecycle: see
    runtime/lifecycle.py). The caller calls ``spawned``; PID 1 the others."""

    def fds(self) -> tuple[int, ...]:
        """The descriptors PID 1 keeps through its set-up."""
        ...

    def spawned(self, pid: int) -> None:
        """In the caller, once PID 1 (host pid ``pid``) is in its namespaces."""
        ...

    def before_pivot(self) -> None:
        """In PID 1, its root assembled, before pivot_root."""
        ...

    def before_exec(self, argv: tuple[str, ...], environment: Mapping[str, str],
                    status_w: int) -> None:
        """In PID 1 after the caller's "go", with the status pipe's end ``status_w``."""
        ...


@dataclass(frozen=True)
class LaunchPlan:
    """Everything PID 1 needs, decided by the parent before fork."""

    argv: tuple[str, ...]
    namespaces: int  # CLONE_NEW* flags for new namespaces
    rootfs: mounts.RootfsPlan | None  # None: share the mount namespace joined (no new root)
    confinement: security.Confinement  # what the command runs under (runtime/security)
    cgroup_procs: tuple[str, ...] = ()
    # A cgroup2 directory PID 1 is born in (clone3's CLONE_INTO_CGROUP): joined without a write
    # to its cgroup.procs, so without that write's wait for an RCU grace period.
    fork_into: str | None = None
    joins: tuple[tuple[str, int], ...] = ()  # (/proc/PID/ns/KIND, CLONE_NEW*) to setns into
    environment: Mapping[str, str] = field(default_factory=dict)
    user: str = "root"
    working_dir: str = "/"
    hostname: str | None = None
    stdio: tuple[int, int, int] | None = None  # fds for 0, 1, 2; None: inherit the parent's
    tty: bool = False  # stdin is a terminal to become the controlling terminal
    die_with_parent: bool = False  # the shim (and so the container) dies with the caller
    exit_dir: str | None = None  # where the shim records PID 1's exit status (file EXIT_FILE)
    userns: IdMap | None = None  # a user namespace with these maps: new, or joined
    init: str | None = None  # ctr-init's path: it is PID 1, the command PID 2
    pass_fds: tuple[int, ...] = ()  # the caller's fds the command gets as 3, 4, ... (sockets)
    # False: no ctr-shim; the intermediate exits once PID 1 is forked, and PID 1 goes to the
    # caller's subreaper (ctr-runtime: the engine's conmon or shim reaps it, as runc's).
    shim: bool = True
    settings: ProcessSettings = field(default_factory=ProcessSettings)  # see procsettings
    sysctl: tuple[tuple[str, str], ...] = ()  # namespaced kernel parameters (runtime/sysctl)
    steps: Steps | None = None
    # PID 1's fds 1 and 2 are pipes to the shim, which writes them to these log files (stdio's
    # 1 and 2 unused); see logwriter.py
    log: LogTarget | None = None


EXIT_FILE = "exit"  # written by ctr-shim: "CODE UNIX_TIME\n"


def _write(fd: int, text: str) -> None:
    os.write(fd, text.encode())


def child_fail(status_w: int, exc: BaseException) -> NoReturn:
    """A child before exec: report why it failed on the status pipe, then exit."""
    message = str(exc) or type(exc).__name__
    if os.environ.get("CTR_DEBUG"):
        message += "\n" + traceback.format_exc()
    try:
        _write(status_w, f"ERR {message}\n")
    finally:
        os._exit(127)


def _environment(plan: LaunchPlan, identity: users.Identity) -> dict[str, str]:
    env = {"PATH": defaults.PATH, "HOME": identity.home, "container": "ctr"}
    if plan.hostname:
        env["HOSTNAME"] = plan.hostname
    if plan.tty:
        env["TERM"] = os.environ.get("TERM", "xterm")
    env.update(plan.environment)
    return env


def enter_namespaces(plan: LaunchPlan) -> None:
    """Join the plan's cgroups first, so that a new cgroup namespace is rooted at them; then its
    namespaces and stdio. For PID 1, and for a process exec'd into a container (no joins)."""
    for path in plan.cgroup_procs:
        with open(path, "w") as f:
            f.write("0")
    for path, nstype in plan.joins:
        if nstype not in _JOINED_BY_INTERMEDIATE:
            _setns_path(path, nstype)
    syscalls.unshare(plan.namespaces & ~syscalls.CLONE_NEWPID)
    if plan.stdio:
        for target, fd in enumerate(plan.stdio):
            os.dup2(fd, target)


# The pid namespace is entered for the child the intermediate forks; a user namespace by the
# intermediate, so that the new pid namespace is that one's and PID 1 is born in it.
_JOINED_BY_INTERMEDIATE = (syscalls.CLONE_NEWPID, syscalls.CLONE_NEWUSER)


def _joins_user(plan: LaunchPlan) -> bool:
    """Whether the plan joins an existing user namespace rather than making one."""
    return any(nstype == syscalls.CLONE_NEWUSER for _, nstype in plan.joins)


def _setns_path(path: str, nstype: int) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        syscalls.setns(fd, nstype)
    finally:
        os.close(fd)


def _init(plan: LaunchPlan, go_r: int, status_w: int, pid_w: int,
          userns_channel: _UsernsChannel | None) -> None:
    """PID 1 before exec. Its new network namespace comes first and the parent hears of it at
    once, so the parent's veth set-up overlaps all the rest, the cgroup join included: on cgroup
    v1 the first write to ``cgroup.procs`` waits for an RCU grace period (9-18 ms measured).

    It keeps only the descriptors of the handshake (the shim's one of the state directory is not
    among them): a host directory reachable as /proc/1/fd/N would lead out of the container."""
    syscalls.close_inherited(_handshake_fds(plan, go_r, status_w, pid_w, userns_channel))
    syscalls.prctl(syscalls.PR_SET_DUMPABLE, 0)  # see exec_command
    # ctr-init is exec'd through this descriptor from inside the root, which need not hold it
    # (nor a libc: it is static); opened while we are still the host's root.
    init = (_above(os.open(plan.init, os.O_PATH | os.O_CLOEXEC), _passed_end(plan))
            if plan.init else None)
    if plan.shim:
        syscalls.prctl(syscalls.PR_SET_PDEATHSIG, signal.SIGKILL)
    early = plan.namespaces & syscalls.CLONE_NEWNET
    if early:
        syscalls.unshare(early)
        loopback.bring_up()
    _write(pid_w, _READY)  # the parent may now configure our network namespace
    os.close(pid_w)
    enter_namespaces(replace(plan, namespaces=plan.namespaces & ~early))
    sysctl.apply(plan.sysctl)
    rootfs = plan.rootfs
    if userns_channel is not None:
        rootfs = rootfs and mounts.reachable(rootfs)  # while we are still the host's uid 0
        sources = userns_channel.receive()
        _become_container_root(userns_channel.shim if plan.shim else None)
        rootfs = rootfs and mounts.attach_sources(rootfs, sources)
    if rootfs:
        mounts.assemble(rootfs)
    if plan.steps:
        plan.steps.before_pivot()
    if rootfs:
        mounts.pivot(rootfs.root, move=rootfs.no_pivot)
        mounts.finish(rootfs)
    # Nothing but the pipes to the parent from here on: the descriptors of host directories
    # that set-up used (with a user namespace) are gone before the working directory is made.
    syscalls.close_inherited((go_r, status_w, *([] if init is None else [init]),
                              *plan.pass_fds, *(plan.steps.fds() if plan.steps else ())))
    if plan.hostname and plan.namespaces & syscalls.CLONE_NEWUTS:
        socket.sethostname(plan.hostname)
    identity = procsettings.identity(users.resolve(plan.user), plan.settings)
    enter_working_dir(plan.working_dir, create=True)
    if os.read(go_r, 1) != b"G":
        os._exit(127)  # the parent gave up on us
    os.close(go_r)
    if plan.steps:
        plan.steps.before_exec(plan.argv, plan.environment, status_w)
    exec_command(plan, identity, init)


def _handshake_fds(plan: LaunchPlan, *fds: int | _UsernsChannel | None) -> list[int]:
    """The descriptors the spawn handshake needs in a child: its pipes, the user-namespace
    socket, and the fds meant to become stdio and to be passed."""
    keep = [*(plan.stdio or ()), *plan.pass_fds, *(plan.steps.fds() if plan.steps else ())]
    for fd in fds:
        if isinstance(fd, _UsernsChannel):
            keep += [fd.sock.fileno(), fd.shim]
        elif fd is not None:
            keep.append(fd)
    return keep


def enter_working_dir(path: str, create: bool) -> None:
    """chdir into the container's working directory, which must lie inside its root: one named
    through /proc/self/fd/N of a descriptor open at that moment would not (runc's
    CVE-2024-21626), and getcwd() fails for a directory outside the root."""
    try:
        if create:
            os.makedirs(path, exist_ok=True)
        os.chdir(path)
    except OSError as exc:
        raise SpawnError(f"working directory {path}: {exc.strerror}") from None
    try:
        os.getcwd()
    except FileNotFoundError:
        raise SpawnError(f"working directory {path}: outside the container's root") from None


class _UsernsChannel:
    """The child end of the user-namespace step: the socket, and a pidfd of the intermediate (the
    shim), which PID 1 cannot see from inside its pid namespace."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.shim = -1

    def receive(self) -> list[int]:
        """Wait until the parent has mapped the namespace; the sources it hands over."""
        message, fds, _, _ = socket.recv_fds(self.sock, 1, 64)
        if message != b"M":
            raise SpawnError("the user namespace was not set up")  # the parent says why
        self.sock.close()
        return fds


def _become_container_root(shim: int | None) -> None:
    """From the host's uid 0 (unmapped inside) to uid and gid 0 inside, BASE outside. The change
    of credentials clears the parent-death signal: set it again, then make sure the shim did not
    die in between (it could not deliver the signal then). Without a shim (ctr-runtime's: the
    engine's shim is PID 1's parent) there is no such signal to keep."""
    os.setresgid(0, 0, 0)
    os.setgroups([])
    os.setresuid(0, 0, 0)
    if shim is None:
        return
    syscalls.prctl(syscalls.PR_SET_PDEATHSIG, signal.SIGKILL)
    if select.select([shim], [], [], 0)[0]:  # a pidfd is readable once its process has exited
        os._exit(127)


def exec_command(plan: LaunchPlan, identity: users.Identity,
                 init: int | None = None) -> NoReturn:
    """The last steps of every process started in a container, PID 1 or exec'd into it: its
    terminal, capabilities and user, then exec with exactly stdio open, whatever the parent had.
    With ``init`` (a descriptor of ctr-init) PID 1 execs that, which runs the command as PID 2.

    Until the exec the process is the host's interpreter, and not dumpable (set right after the
    fork), so no process of the container can open its /proc/PID/exe, fd or root (the
    CVE-2019-5736 pattern); exec makes the command dumpable again, as any program."""
    env = _environment(plan, identity)
    if plan.tty:
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    # Close-on-exec rather than closed: the status pipe must stay open until the exec succeeds.
    syscalls.close_range(3, syscalls.CLOSE_RANGE_CLOEXEC)
    _pass_fds(plan.pass_fds)
    # An ignored signal stays ignored across exec: CPython ignores SIGPIPE and SIGXFSZ (a command
    # writing into a closed pipe must die of SIGPIPE, as anywhere else), and whoever ran ctr
    # may have ignored others.
    syscalls.default_signal_dispositions()
    procsettings.apply(plan.settings)  # as root: a hard limit may need raising
    security.confine(plan.confinement, identity)  # the filter, if any, is loaded last of all
    try:
        if init is not None:
            os.execve(init, [_INIT_NAME, "--", *plan.argv], env)
        os.execvpe(plan.argv[0], list(plan.argv), env)
    except OSError as exc:
        raise SpawnError(f"exec {plan.argv[0]}: {exc.strerror}") from exc


def _passed_end(plan: LaunchPlan) -> int:
    """The first fd above those the command is passed: the descriptors PID 1 holds until its
    exec (the status pipe, ctr-init) lie at or above it, out of the way of ``_pass_fds``."""
    return _PASSED_START + len(plan.pass_fds)


def _above(fd: int, floor: int) -> int:
    """``fd`` moved to the lowest free number from ``floor`` on (close-on-exec)."""
    if fd >= floor:
        return fd
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, floor)
    os.close(fd)
    return moved


def place(fd: int, plan: LaunchPlan) -> int:
    """``fd`` out of the way of the fds PID 1 of ``plan`` is passed (a handshake pipe that came
    in over a socket: runtime/warm.py)."""
    return _above(fd, _passed_end(plan))


def _pass_fds(fds: tuple[int, ...]) -> None:
    """``fds`` as 3, 4, ..., inherited across exec: first copied above that range, since one
    may already sit where another goes (nothing else PID 1 still needs lies there)."""
    copies = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, _PASSED_START + len(fds)) for fd in fds]
    for target, fd in enumerate(copies, start=_PASSED_START):
        os.dup2(fd, target, inheritable=True)


def helper_path(name: str) -> str:
    """ctr's binary ``name`` (ctr-shim, ctr-init): $CTR_SHIM / $CTR_INIT, the one built into
    the source tree, or the installed one."""
    candidates = [os.environ.get(name.upper().replace("-", "_"), ""),
                  *(os.path.join(directory, name) for directory in _LIBEXEC)]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise SpawnError(f"{name} not found (looked in {', '.join(_LIBEXEC)}): build it with "
                     "`make shim` (needs gcc and a static libc)")


def _intermediate(plan: LaunchPlan, shim: str, go_r: int, status_w: int, pid_w: int,
                  caller: int, userns_channel: _UsernsChannel | None) -> None:
    os.setsid()  # no terminal signal or hangup of the caller's session reaches the shim
    if plan.die_with_parent:
        syscalls.prctl(syscalls.PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != caller:
            os._exit(127)
    outputs = ShimOutputs(plan)
    for kind in _JOINED_BY_INTERMEDIATE:  # the pid namespace first, as the host's root
        for path, nstype in plan.joins:
            if nstype == kind:
                _setns_path(path, nstype)
    if userns_channel is not None:
        if not _joins_user(plan):
            syscalls.unshare(syscalls.CLONE_NEWUSER)
        userns_channel.sock.send(b"U")  # and go on: the maps are needed only by PID 1, later
        userns_channel.shim = os.pidfd_open(os.getpid())
    if plan.namespaces & syscalls.CLONE_NEWPID:
        syscalls.unshare(syscalls.CLONE_NEWPID)
    fork_init(outputs, shim, go_r, status_w, pid_w, userns_channel)


class ShimOutputs:
    """What the intermediate opens before PID 1 is forked and the shim inherits: the state
    directory it records the exit status in, and the log pipes (``plan`` then has their write
    ends as PID 1's stdout and stderr)."""

    def __init__(self, plan: LaunchPlan) -> None:
        # Inherited by the shim across exec, so it can record the status where ctrd will look.
        self.exit_dir = os.open(plan.exit_dir, os.O_DIRECTORY) if plan.exit_dir else None
        if self.exit_dir is not None:
            os.set_inheritable(self.exit_dir, True)
        self.log = None
        if plan.log is not None:
            self.log = LogPipes(plan.log, lambda fd: _above(fd, _passed_end(plan)))
            plan = replace(plan, stdio=(plan.stdio[0] if plan.stdio else 0, *self.log.writes))
        self.plan = plan

    def shim_argv(self, shim: str, pid: int) -> list[str]:
        return [shim, *(self.log.shim_arguments() if self.log else []), str(pid),
                *([] if self.exit_dir is None else [str(self.exit_dir)])]


def fork_init(outputs: ShimOutputs, shim: str, go_r: int, status_w: int, pid_w: int,
              userns_channel: _UsernsChannel | None = None,
              forked: Callable[[], None] | None = None) -> NoReturn:
    """In the intermediate, once in PID 1's pid namespace: fork PID 1, tell the caller its pid,
    then run ``forked`` (the warm pool's: see runtime/warm.py) and become ctr-shim."""
    plan = outputs.plan
    pid, plan = _fork(plan)
    if pid == 0:
        try:
            _init(plan, go_r, status_w, pid_w, userns_channel)
        except BaseException as exc:
            child_fail(status_w, exc)
    _write(pid_w, str(pid))
    for fd in (pid_w, go_r, status_w):
        os.close(fd)
    if forked is not None:
        forked()
    if not plan.shim:
        os._exit(0)
    if userns_channel is not None:
        _keep_kill_capability()
    os.execv(shim, outputs.shim_argv(_SHIM_NAME, pid))


def _fork(plan: LaunchPlan) -> tuple[int, LaunchPlan]:
    """Fork PID 1, born in ``plan.fork_into`` if given. Where clone3 is refused (seccomp's
    ENOSYS in a container) it forks as usual and PID 1 joins that cgroup by cgroup.procs too."""
    if plan.fork_into is not None:
        cgroup = os.open(plan.fork_into, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            return syscalls.clone3(syscalls.CLONE_INTO_CGROUP, cgroup), plan
        except OSError as exc:
            if exc.errno != errno.ENOSYS:
                raise
        finally:
            os.close(cgroup)  # in the child too: close_inherited would, but not before _init
        plan = replace(plan, fork_into=None, cgroup_procs=(
            *plan.cgroup_procs, os.path.join(plan.fork_into, "cgroup.procs")))
    return os.fork(), plan


def _keep_kill_capability() -> None:
    """In the intermediate, in the user namespace as its unmapped uid 0, before it execs the shim,
    which would have no capability left: keep CAP_KILL there, as an ambient capability (the only
    kind an exec keeps for a non-root uid). The kernel checks a parent-death signal as a kill by
    the dying parent, so without it the shim's death would not take PID 1 with it."""
    effective, permitted, _ = syscalls.capget()
    syscalls.capset(effective, permitted, inheritable=1 << _CAP_KILL)
    syscalls.prctl(syscalls.PR_CAP_AMBIENT, syscalls.PR_CAP_AMBIENT_RAISE, _CAP_KILL)


class Child:
    """PID 1 of a container between fork and exec, and its shim, seen from the parent."""

    def __init__(self, pid: int, shim: int, go_w: int, status_r: int) -> None:
        self.pid = pid
        self.shim = shim
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
        status = read_all(self._status_r).decode(errors="replace")
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
            os.waitpid(self.shim, 0)


def read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 4096):
        chunks.append(chunk)
    return b"".join(chunks)


class Handshake:
    """The pipes of the spawn handshake: "go" to PID 1, its status back, its pid (from the
    intermediate) and ready mark (from PID 1) back. The child's ends lie above the fds to be
    passed, which PID 1 moves to 3.. before exec."""

    def __init__(self, plan: LaunchPlan) -> None:
        floor = _passed_end(plan)
        self.go_r, self.go_w = (_above(fd, floor) for fd in os.pipe2(os.O_CLOEXEC))
        self.status_r, self.status_w = (_above(fd, floor) for fd in os.pipe2(os.O_CLOEXEC))
        self.pid_r, self.pid_w = (_above(fd, floor) for fd in os.pipe2(os.O_CLOEXEC))

    def theirs(self) -> tuple[int, int, int]:
        """The child's ends, in the order the intermediate takes them."""
        return self.go_r, self.status_w, self.pid_w

    def close_theirs(self) -> None:
        for fd in self.theirs():
            os.close(fd)

    def child(self, shim: int, plan: LaunchPlan, failure: str | None = None) -> Child:
        """PID 1 once it is in its namespaces (``shim``: the intermediate), or SpawnError with
        the reason of the step that failed before (``failure``: the caller's own)."""
        # The shim writes PID 1's pid, PID 1 the ready mark once in its namespaces, in either
        # order.
        report = read_all(self.pid_r).decode()
        os.close(self.pid_r)
        pid_text = report.replace(_READY, "")
        if failure or not pid_text or _READY not in report:  # a step before ready failed
            message = read_all(self.status_r).decode(errors="replace")
            os.close(self.status_r)
            os.close(self.go_w)
            os.waitpid(shim, 0)
            raise SpawnError(failure or message.removeprefix("ERR ").strip()
                             or "container set-up failed")
        if not plan.shim:
            os.waitpid(shim, 0)  # the intermediate, gone once PID 1 was forked
        return Child(int(pid_text), shim, self.go_w, self.status_r)


def spawn(plan: LaunchPlan) -> Child:
    """Start PID 1 in new namespaces; it builds its root while the caller sets up the network."""
    shim_binary = helper_path(_SHIM_NAME)
    pipes = Handshake(plan)
    floor = _passed_end(plan)
    ours, theirs = (socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
                    if plan.userns else (None, None))
    if theirs is not None:
        theirs = socket.socket(fileno=_above(theirs.detach(), floor))
    caller = os.getpid()
    shim = os.fork()
    if shim == 0:
        try:
            channel = None if theirs is None else _UsernsChannel(theirs)
            journal = None if plan.log is None else plan.log.journal  # the shim's
            syscalls.close_inherited(_handshake_fds(plan, *pipes.theirs(), channel, journal))
            _intermediate(plan, shim_binary, *pipes.theirs(), caller, channel)
        except BaseException as exc:
            child_fail(pipes.status_w, exc)
    pipes.close_theirs()
    failure = None
    if ours is not None and theirs is not None:
        theirs.close()
        with ours:  # closed, PID 1 gives up if it has not got the sources
            try:
                _map_user_namespace(ours, shim, plan)
            except Exception as exc:
                failure = f"user namespace: {_reason(exc)}"
    return pipes.child(shim, plan, failure)


def _reason(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror + (f" ({exc.filename})" if exc.filename else "")
    return str(exc)


def _map_user_namespace(sock: socket.socket, intermediate: int, plan: LaunchPlan) -> None:
    """The parent's step: once the intermediate made the namespace, map it and hand PID 1 the
    detached mounts of the host sources of its root (made now: idmapping needs the namespace).
    Without a shim the intermediate may have exited by now; its /proc files still reach the
    namespace until we reap it, after this."""
    if sock.recv(1) != b"U":
        return  # the intermediate failed; its message is on the status pipe
    assert plan.userns is not None
    if not _joins_user(plan):  # one joined has its maps
        userns.write_maps(intermediate, plan.userns)
    sources = []
    if plan.rootfs is not None:
        namespace = os.open(f"/proc/{intermediate}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
        try:
            sources = mounts.open_sources(plan.rootfs, namespace)
        finally:
            os.close(namespace)
    try:
        socket.send_fds(sock, [b"M"], sources)
    finally:
        for fd in sources:
            os.close(fd)


def start_time(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot): tells a process from a later one that
    reused its pid. None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    return int(stat.rpartition(")")[2].split()[19])


def same_process(pid: int, started: int | None) -> bool:
    """Whether ``pid`` is still the process that started at ``started`` (and not a zombie)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
    except OSError:
        return False
    return fields[0] != "Z" and started is not None and int(fields[19]) == started


def exit_code(status: int) -> int:
    """Shell convention: the exit status, or 128 + signal number for a killed process."""
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code
