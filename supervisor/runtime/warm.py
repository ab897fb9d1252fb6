"""ctrd's warm pool: starts prepared ahead, so that a container's own start forks no daemon,
waits for no cgroup join and makes no network namespace or veth pair.

The direct way (``Direct``) costs a start, measured on the development VM: two forks of the
~55 MB daemon (the intermediate, then PID 1), PID 1's first write to a v1 ``cgroup.procs``, which
waits for an RCU grace period (5-17 ms), a new network namespace and its loopback, and the veth
pair. A ``Sandbox`` has all of that done ahead for the next container of its kind (network
"veth" or "none"), by an intermediate of its own:

- forked by the pool's ``Zygote``, a small interpreter of the runtime alone, as ctrd's child
  (CLONE_PARENT), in a session of its own, its pid namespace unshared (its first child is PID 1
  of a new one), waiting in a cgroup of the pool's (``.warm-XXXXXXXX``) in every v1 hierarchy
  (none where the host is all cgroup2);
- with a network namespace, loopback up, a detached sysfs of it (``mounts.new_sysfs``: the
  kernel's search among the host's sysfs mounts grows with the containers running), and for
  "veth" a spare pair (``network.make_spare``).

A start that takes one renames the pool's v1 directories to the container's name (cgroup v1
renames a cgroup in place; cgroup2 does not) and makes its cgroup2 directory; sends the
intermediate the launch plan, pickled, with the descriptors it names; the intermediate forks PID 1
into the cgroup2 directory (``LaunchPlan.fork_into``) and into its own, renamed, v1 cgroups, moves
itself back into ctrd's (the one ``cgroup.procs`` write left, off the container's way: PID 1 goes
on meanwhile) and becomes ctr-shim. PID 1 joins the prepared network namespace
(``LaunchPlan.joins``), attaches the prepared sysfs (``RootfsPlan.sysfs``) and goes on as any
PID 1; ctrd plugs the spare veth into the bridge.

A thread refills the pool, up to ``size`` sandboxes of each kind taken so far, while no start is
on its way. Sandboxes die with ctrd (their intermediates have a parent-death signal until taken);
their cgroups, named in ``STATE_DIR/warm``, are removed by ``WarmPool.close`` or, after a crash,
by the next pool (``remove_leftovers``). An intermediate or zygote that died is replaced. A
container the pool does not fit (a user namespace, joined namespaces, other devices, no shim)
starts the direct way, as every one does with ``warm_pool = 0``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import pickle
import secrets
import select
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from supervisor.model.spec import DeviceRule, NetworkSpec, Resources
from supervisor.runtime import devices, mounts, network, process, syscalls
from supervisor.runtime.cgroups import Cgroup, CgroupDriver, files
from supervisor.runtime.cgroups.v1.driver import V1Driver
from supervisor.runtime.cgroups.v2.driver import V2Driver
from supervisor.runtime.network import loopback
from supervisor.runtime.network.netns import new_netns
from supervisor.runtime.spawner import KINDS, Direct, Spawner

if TYPE_CHECKING:
    from supervisor.runtime.network.veth import Spare

log = logging.getLogger(__name__)

RECORD = "warm"  # STATE_DIR/warm: the names of the pool's cgroups, one a line
DRIVERS = ("cgroupfs-v1", "cgroupfs-v2")  # a systemd scope cannot be made ahead of its name
_PREFIX = ".warm-"  # no container name starts with a dot
_LINK = "vw"  # spare host ends: vw, 6 digits of the state directory's hash, 7 random ones
_LINK_RANDOM = 7
_READY_TIMEOUT = 10.0
_RETRY = 1.0  # after a sandbox could not be made
_FAILURES = 3  # in a row, and the pool gives up
_MAX_FDS = 64
_MAX_PLAN = 1 << 20
_MAX_REPLY = 256


@dataclass(frozen=True)
class _Prepared:
    """What an intermediate made for its sandbox, as it tells ctrd (with the descriptors of the
    namespace and of its sysfs, and for "veth" that of the netlink socket inside it)."""

    cgroup: str | None  # the pool's cgroup, in the v1 hierarchies; None on a cgroup2-only host
    v1: tuple[str, ...]  # its directories
    cgroup2: tuple[str, ...]  # where the container's cgroup2 directories are made
    link: tuple[str, int, int] | None  # the spare pair: host end's name and index, eth0's index


class Sandbox:
    """One start of ``kind`` prepared (see the module docstring); a ``Spawner`` for it.

    The intermediate does the preparing, in a process of its own: ctrd's thread only asks the
    zygote for it, then waits (so neither the CPU time nor the GIL of that work is taken from
    a start)."""

    def __init__(self, kind: str, driver: CgroupDriver, zygote: Zygote) -> None:
        self.kind = kind
        self.done: Callable[[], None] | None = None  # the pool's, once taken
        self._driver = driver
        self._cgroup: Cgroup | None = None  # the pool's, until renamed for a container
        self._v1: list[Path] = []  # its directories the intermediate waits in
        self._cgroup2: list[Path] = []  # where the container's cgroup2 directory is made
        self._netns: int | None = None
        self._sysfs: int | None = None
        self._spare: Spare | None = None
        # the intermediate: ctrd's child (ctr-shim once it has forked PID 1), and the socket to
        # it until the plan is sent
        sock, theirs = socket.socketpair(socket.AF_UNIX,
                                         socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        try:
            self.shim = zygote.fork(kind, theirs)
        except BaseException:
            sock.close()
            raise
        finally:
            theirs.close()
        self._sock: socket.socket | None = sock
        self._pidfd = os.pidfd_open(self.shim)  # signals reach it, never a later user of its pid
        # (even if it has ended already: it stays a zombie, its pid its own, until reaped here)
        try:
            sock.settimeout(_READY_TIMEOUT)
            self._take_over(*_receive(sock))
            if sock.recv(1) != b"R":
                raise RuntimeError("the intermediate ended before it was ready")
            sock.settimeout(None)
        except BaseException:
            self.close()
            raise

    def alive(self) -> bool:
        """Whether the intermediate still waits (someone may have killed it)."""
        poll = select.poll()  # not select(): ctrd has more than 1024 descriptors with ~500
        poll.register(self._pidfd, select.POLLIN)  # containers
        return not poll.poll(0)

    def _end(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.shim, 0)

    def _take_over(self, prepared: _Prepared, fds: list[int]) -> None:
        """From here on what the intermediate made is ours to remove, if it fails."""
        self._netns, self._sysfs = fds[:2]
        if prepared.cgroup is not None:
            self._cgroup = self._driver.open(prepared.cgroup)
        self._v1 = [Path(path) for path in prepared.v1]
        self._cgroup2 = [Path(path) for path in prepared.cgroup2]
        if prepared.link is not None:
            self._spare = network.spare(*prepared.link[:2], fds[2], prepared.link[2])

    # -- the Spawner of the container that took it -----------------------------------------------

    def cgroup(self, name: str, resources: Resources,
               rules: Sequence[DeviceRule] | None) -> Cgroup:
        """The pool's cgroup renamed ``name`` with its cgroup2 directory added, and ``resources``
        applied (its device rules are the pool's: ``WarmPool.take`` checked); the direct way
        where there is none (cgroup2 only)."""
        if self._cgroup is None:
            return self._driver.create(name, resources, rules)
        with contextlib.ExitStack() as undo:
            for directory in self._v1:
                try:
                    os.rename(directory, directory.parent / name)
                except FileExistsError:
                    raise FileExistsError(f"cgroup {directory.parent / name} already exists"
                                          ) from None
                undo.callback(os.rename, directory.parent / name, directory)
            for parent in self._cgroup2:  # which the last container's teardown may remove
                if not files.make_child(parent / name, partial(files.make_dir, parent)):
                    raise FileExistsError(f"cgroup {parent / name} already exists")
                undo.callback(os.rmdir, parent / name)
            undo.pop_all()
        # Renamed, and still this sandbox's to remove (close) until the limits are in force:
        # one the kernel refuses fails the start with nothing left behind.
        self._cgroup = cgroup = self._driver.open(name)
        cgroup.apply(resources)
        self._cgroup = None  # the container's now, and its undo's
        return cgroup

    def spawn(self, plan: process.LaunchPlan) -> process.Child:
        """The intermediate forks PID 1 of ``plan``, whose cgroups it is in already (or is born
        in) and whose network namespace and read-only sysfs are the prepared ones."""
        assert self._sock is not None and self._netns is not None and self._sysfs is not None
        rootfs = plan.rootfs and replace(plan.rootfs,
                                         sysfs=f"/proc/{os.getpid()}/fd/{self._sysfs}")
        plan = replace(plan, cgroup_procs=(), rootfs=rootfs,
                       namespaces=plan.namespaces & ~syscalls.CLONE_NEWNET,
                       joins=(*plan.joins, (f"/proc/{os.getpid()}/fd/{self._netns}",
                                            syscalls.CLONE_NEWNET)))
        pipes = process.Handshake(plan)
        sock, self._sock = self._sock, None  # the intermediate is the container's from here on
        try:
            socket.send_fds(sock, [pickle.dumps(plan)], [*pipes.theirs(), *_descriptors(plan)])
        except OSError as exc:
            self._end()
            raise process.SpawnError(f"warm start: {exc.strerror}") from exc
        finally:
            sock.close()
            pipes.close_theirs()
            os.close(self._pidfd)  # the Child's to reap now
        return pipes.child(self.shim, plan)

    def attach(self, name: str, pid: int, spec: NetworkSpec, state_dir: Path, pool: str,
               bridge: str) -> network.Attachment:
        if self._spare is None:
            raise ValueError(f"a start of kind {self.kind!r} has no veth to attach")
        return network.attach_spare(name, self._spare, spec, state_dir, pool, bridge)

    def close(self) -> None:
        """Whatever a container did not take (all of it when the pool closes): the intermediate
        not sent a plan, the cgroup not renamed, the spare pair not plugged; and the descriptors
        of the namespace and its sysfs, which PID 1 holds once it has joined and attached them."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
            self._end()
            os.close(self._pidfd)
        if self._cgroup is not None:
            self._cgroup.destroy()
            self._cgroup = None
        if self._spare is not None:
            if self._spare.taken:
                self._spare.close()
            else:
                self._spare.discard()
            self._spare = None
        for fd in (self._netns, self._sysfs):
            if fd is not None:
                os.close(fd)
        self._netns = self._sysfs = None
        if self.done is not None:
            self.done()
            self.done = None


class WarmPool:
    """Up to ``size`` sandboxes of each kind taken so far, refilled by a thread of its own."""

    def __init__(self, driver: CgroupDriver, state_dir: Path, size: int) -> None:
        self.size = size
        self._driver = driver
        self._state_dir = state_dir
        self._rules = devices.allow_list(())
        self._zygote: Zygote | None = None  # started by the thread, when first needed
        self._ready: dict[str, list[Sandbox]] = {kind: [] for kind in KINDS}
        self._wanted: list[str] = []
        self._cond = threading.Condition()
        self._closed = False
        self._starting = 0  # starts on their way
        self._thread = threading.Thread(target=self._fill, name="ctr-warm", daemon=True)
        self._thread.start()

    def take(self, kind: str, rules: Sequence[DeviceRule] | None) -> Spawner:
        """How a container of ``kind`` whose device rules are ``rules`` starts: from a sandbox
        if one is ready, else the direct way; from now on the pool keeps some of that kind. It
        prepares none while a start is on its way (until the spawner is closed): it would take
        the CPU, and the GIL, from it."""
        with self._cond:
            if kind not in self._wanted:
                self._wanted.append(kind)
            self._starting += 1
            ready = self._ready[kind]
            sandbox = None
            while ready and rules is not None and tuple(rules) == self._rules:
                sandbox = ready.pop(0)
                if sandbox.alive():
                    break
                log.warning("warm pool: a prepared start's intermediate (PID %d) died; "
                            "preparing another", sandbox.shim)
                sandbox.close()
                sandbox = None
        if sandbox is None:
            return Direct(self._driver, self._started)
        sandbox.done = self._started
        return sandbox

    def _started(self) -> None:
        with self._cond:
            self._starting -= 1
            self._cond.notify_all()

    def ready(self) -> dict[str, int]:
        """How many sandboxes of each kind wait."""
        with self._cond:
            return {kind: len(sandboxes) for kind, sandboxes in self._ready.items()}

    def close(self) -> None:
        """Stop refilling and remove every sandbox, and the record of their cgroups."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join()
        for sandboxes in self._ready.values():
            while sandboxes:
                sandboxes.pop().close()
        if self._zygote is not None:
            self._zygote.close()
        (self._state_dir / RECORD).unlink(missing_ok=True)

    def _fill(self) -> None:
        failures = 0
        while (kind := self._next()) is not None:
            try:
                sandbox = Sandbox(kind, self._driver, self._live_zygote())
            except Exception as exc:
                failures += 1
                log.warning("warm pool: cannot prepare a start (%s): %s", kind, exc)
                with self._cond:
                    if failures >= _FAILURES:
                        log.warning("warm pool: off after %d failures; starts go the direct "
                                    "way", failures)
                        return
                    self._cond.wait(_RETRY)
                continue
            failures = 0
            with self._cond:
                if self._closed:
                    sandbox.close()
                    return
                self._ready[kind].append(sandbox)

    def _live_zygote(self) -> Zygote:
        if self._zygote is not None and not self._zygote.alive():
            log.warning("warm pool: the zygote (PID %d) ended; starting another",
                        self._zygote.pid)
            self._zygote.close()
            self._zygote = None
        if self._zygote is None:
            self._zygote = Zygote(self._driver, self._state_dir)
        return self._zygote

    def _next(self) -> str | None:
        """The kind to prepare next (the one with the fewest ready), once one is short; None
        once closed."""
        with self._cond:
            while not self._closed:
                short = [kind for kind in self._wanted if len(self._ready[kind]) < self.size]
                if short and not self._starting:
                    return min(short, key=lambda kind: len(self._ready[kind]))
                self._cond.wait()
            return None


def open_pool(driver: CgroupDriver, state_dir: Path, size: int) -> WarmPool | None:
    """ctrd's pool, or None: ``size`` 0, a cgroup driver it cannot prepare for, or no ctr-shim
    (a start says why). What an earlier pool left is removed first, either way."""
    try:
        remove_leftovers(driver, state_dir)
        if size <= 0 or driver.name not in DRIVERS:
            return None
        return WarmPool(driver, state_dir, size)
    except (OSError, process.SpawnError) as exc:
        log.warning("warm pool: off: %s", exc)
        return None


def remove_leftovers(driver: CgroupDriver, state_dir: Path) -> None:
    """What the pool of a ctrd on ``state_dir`` that could not close it left (killed: its
    sandboxes died with it): their cgroups' directories, and spare veth pairs the kernel has
    not yet removed with their namespaces."""
    record = state_dir / RECORD
    with contextlib.suppress(FileNotFoundError):
        for name in record.read_text().split():
            with contextlib.suppress(FileNotFoundError):
                driver.open(name).destroy()
        record.unlink()
    prefix = link_prefix(state_dir)
    links = [link.name for link in Path("/sys/class/net").iterdir()
             if link.name.startswith(prefix)]
    if links:
        network.delete_links(links)


def link_prefix(state_dir: Path) -> str:
    """What the spare veths of the pools on ``state_dir`` are named with: a host has other
    ctrds, whose spares are theirs."""
    return _LINK + hashlib.sha256(str(state_dir).encode()).hexdigest()[:6]


# -- the intermediate ----------------------------------------------------------------------------


class Zygote:
    """The small process the intermediates are forked from: a fresh interpreter with only the
    runtime imported (~23 MB where ctrd has ~55), so that forking it, and PID 1 from its child,
    copies less than half the page tables, and no thread of ctrd's is caught half-way (a module
    being imported then stays half-made, its lock held, in every process forked from it: PID 1
    was seen waiting for good for ``supervisor.runtime.seccomp``). It forks with CLONE_PARENT:
    the intermediate is ctrd's child, which reaps it and reads its status, as the direct way's.
    """

    def __init__(self, driver: CgroupDriver, state_dir: Path) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX,
                                         socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        arguments = [str(theirs.fileno()), str(os.getpid()), *_driver_arguments(driver),
                     str(state_dir), process.helper_path("ctr-shim")]
        with theirs:
            self._process = subprocess.Popen(
                [sys.executable, "-c", _SERVE, *arguments], pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL)
        self.pid = self._process.pid
        self._sock = ours
        self._sock.settimeout(_READY_TIMEOUT)
        try:
            if self._sock.recv(1) != b"R":
                raise RuntimeError("the warm pool's zygote ended as it started")
        except BaseException:
            self.close()
            raise
        self._sock.settimeout(None)

    def fork(self, kind: str, sock: socket.socket) -> int:
        """A new intermediate preparing a sandbox of ``kind``, talking on ``sock``; its pid."""
        try:
            socket.send_fds(self._sock, [kind.encode()], [sock.fileno()])
            reply = self._sock.recv(_MAX_REPLY).decode()
        except OSError as exc:
            raise RuntimeError(f"the warm pool's zygote: {exc.strerror}") from exc
        if not reply.isdigit():
            raise RuntimeError(f"the warm pool's zygote: {reply or 'ended'}")
        return int(reply)

    def alive(self) -> bool:
        return self._process.poll() is None

    def close(self) -> None:
        self._sock.close()  # end of file: it exits
        try:
            self._process.wait(_READY_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


# The zygote: python -c _SERVE SOCKET CALLER DRIVER ROOT PARENT STATE_DIR SHIM
_SERVE = "import sys; from supervisor.runtime.warm import serve; sys.exit(serve(sys.argv[1:]))"


def serve(arguments: list[str]) -> int:
    """The zygote's loop: for each kind ctrd sends, with a socket, fork an intermediate."""
    sock_fd, caller, driver_name, root, parent, state_dir, shim = arguments
    syscalls.prctl(syscalls.PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != int(caller):
        return 0
    from supervisor.runtime import seccomp  # noqa: F401  (imported here once: see Zygote)
    from supervisor.runtime.cgroups import open_driver
    from supervisor.runtime.network import veth  # noqa: F401

    driver = open_driver(driver_name, Path(root), parent)
    record, rules = Path(state_dir) / RECORD, devices.allow_list(())
    sock = socket.socket(fileno=int(sock_fd))
    sock.send(b"R")
    while True:
        message, fds, _, _ = socket.recv_fds(sock, _MAX_REPLY, 1)
        if not message:
            return 0
        kind, theirs = message.decode(), socket.socket(fileno=fds[0])
        try:
            pid = syscalls.clone3(syscalls.CLONE_PARENT)
        except OSError as exc:
            sock.send(str(exc).encode())
            theirs.close()
            continue
        if pid == 0:
            try:
                syscalls.close_inherited([theirs.fileno()])
                _intermediate(theirs, int(caller), shim,
                              partial(_prepare, kind, driver, record, rules))
            finally:
                os._exit(127)
        theirs.close()
        sock.send(str(pid).encode())


def _driver_arguments(driver: CgroupDriver) -> list[str]:
    """What the zygote opens the same driver with: its name, root and parent cgroup."""
    if isinstance(driver, V1Driver):
        return [driver.name, str(driver.root), str(driver.parent)]
    if isinstance(driver, V2Driver):
        return [driver.name, str(driver.root), str(driver.parent.relative_to(driver.root))]
    raise ValueError(f"the warm pool cannot prepare starts for the {driver.name} driver")


def _intermediate(sock: socket.socket, caller: int, shim: str,
                  prepare: Callable[[contextlib.ExitStack], tuple[_Prepared, list[int]]]
                  ) -> NoReturn:
    """Prepares its sandbox, then waits in the pool until a start sends its plan (or the pool
    closes the socket)."""
    os.setsid()  # as the direct way's: no signal of the caller's terminal reaches the shim
    syscalls.prctl(syscalls.PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != caller:
        os._exit(0)
    with contextlib.ExitStack() as undo:  # until ctrd has it all: then it is ctrd's to remove
        try:
            prepared, fds = prepare(undo)
            socket.send_fds(sock, [pickle.dumps(prepared)], fds)
        except Exception as exc:
            with contextlib.suppress(OSError):
                sock.send(pickle.dumps(f"{type(exc).__name__}: {exc}"))
            raise
        undo.pop_all()
    for fd in fds:
        os.close(fd)
    home = _home([Path(path) for path in prepared.v1])
    _join([f"{path}/cgroup.procs" for path in prepared.v1])  # the RCU grace period: waited here
    syscalls.unshare(syscalls.CLONE_NEWPID)
    sock.send(b"R")
    message, fds, _, _ = socket.recv_fds(sock, _MAX_PLAN, _MAX_FDS)
    sock.close()
    if not message:
        os._exit(0)  # discarded
    status_w = fds[1]
    try:
        plan = pickle.loads(message)
        go_r, status_w, pid_w = (process.place(fd, plan) for fd in fds[:3])
        plan = _with_descriptors(plan, fds[3:])
        if not plan.die_with_parent:
            syscalls.prctl(syscalls.PR_SET_PDEATHSIG, 0)
        process.fork_init(process.ShimOutputs(plan), shim, go_r, status_w, pid_w,
                          forked=lambda: _join(home))
    except BaseException as exc:
        process.child_fail(status_w, exc)


def _prepare(kind: str, driver: CgroupDriver, record: Path, rules: tuple[DeviceRule, ...],
             undo: contextlib.ExitStack) -> tuple[_Prepared, list[int]]:
    """In the intermediate: the pool's cgroup (on a host with v1 hierarchies), the network
    namespace with loopback up and its sysfs (their descriptors first of the fds), and for
    "veth" the spare pair (with the socket inside third); each with its removal on ``undo``."""
    cgroup, v1, cgroup2 = None, [], []
    if driver.name == "cgroupfs-v1":
        cgroup = _PREFIX + secrets.token_hex(4)
        with record.open("a") as f:
            f.write(cgroup + "\n")
        made = driver.create(cgroup, Resources(), rules)
        undo.callback(made.destroy)
        for directory in made.directories():
            if _is_cgroup2(directory):  # not renameable: the container's is made when taken
                os.rmdir(directory)
                cgroup2.append(str(directory.parent))
            else:
                v1.append(str(directory))
    netns, sysfs = new_netns(_loopback_and_sysfs)
    undo.callback(os.close, netns)
    undo.callback(os.close, sysfs)
    fds, link = [netns, sysfs], None
    if kind == "veth":
        spare = network.make_spare(netns, link_prefix(record.parent)
                                   + secrets.token_hex(4)[:_LINK_RANDOM])
        undo.callback(spare.discard)
        fds.append(os.dup(spare.inside.fileno()))  # the socket object's own is closed
        spare.close()
        link = spare.ifname, spare.index, spare.inside_index
    return _Prepared(cgroup, tuple(v1), tuple(cgroup2), link), fds


def _loopback_and_sysfs() -> int:
    loopback.bring_up()
    return mounts.new_sysfs()


def _receive(sock: socket.socket) -> tuple[_Prepared, list[int]]:
    message, fds, _, _ = socket.recv_fds(sock, _MAX_PLAN, _MAX_FDS)
    if not message:
        raise RuntimeError("the intermediate ended before it had prepared")
    prepared = pickle.loads(message)
    if isinstance(prepared, str):
        raise RuntimeError(prepared)
    assert isinstance(prepared, _Prepared)
    return prepared, fds


def _join(procs: list[str]) -> None:
    for path in procs:
        with open(path, "w") as f:
            f.write("0")


# -- the plan's descriptors, across the socket ----------------------------------------------------


def _descriptors(plan: process.LaunchPlan) -> list[int]:
    """The caller's descriptors ``plan`` names: stdio, passed fds, the journal's pipe."""
    journal = None if plan.log is None else plan.log.journal
    return [*(plan.stdio or ()), *plan.pass_fds, *([] if journal is None else [journal])]


def _with_descriptors(plan: process.LaunchPlan, fds: list[int]) -> process.LaunchPlan:
    """``plan`` naming ``fds``, the same descriptors as received, in ``_descriptors``' order."""
    given = iter(fds)
    stdio = None if plan.stdio is None else (next(given), next(given), next(given))
    passed = tuple(next(given) for _ in plan.pass_fds)
    log_target = plan.log
    if log_target is not None and log_target.journal is not None:
        log_target = replace(log_target, journal=next(given))
    return replace(plan, stdio=stdio, pass_fds=passed, log=log_target)


# -- cgroups ------------------------------------------------------------------------------------


def _is_cgroup2(directory: Path) -> bool:
    return syscalls.statfs_type(str(directory)) == syscalls.CGROUP2_SUPER_MAGIC


def _home(directories: Sequence[Path]) -> list[str]:
    """The ``cgroup.procs`` of this process's own cgroup in the v1 hierarchy of each of
    ``directories``: where the intermediate goes back to once it has forked PID 1."""
    own = dict(_own_cgroups())
    homes = []
    for directory in directories:
        mount, root, controllers = _mount_of(directory)
        path = next((p for names, p in own.items() if names and names <= controllers), None)
        if path is None:
            raise RuntimeError(f"no cgroup of ctrd's own in the hierarchy of {directory}")
        homes.append(str(Path(mount, os.path.relpath(path, root)) / "cgroup.procs"))
    return homes


def _own_cgroups() -> Iterator[tuple[frozenset[str], str]]:
    """(controllers, path) of each v1 hierarchy in /proc/self/cgroup."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controllers:
            yield frozenset(controllers.split(",")), path


def _mount_of(directory: Path) -> tuple[str, str, frozenset[str]]:
    """(mount point, root, super options) of the cgroup v1 mount that holds ``directory``."""
    best: tuple[str, str, frozenset[str]] | None = None
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields, _, rest = line.partition(" - ")
        parts = fields.split()
        fstype, _, options = rest.split(maxsplit=2)
        mount = parts[4]
        if fstype == "cgroup" and (str(directory) + "/").startswith(mount.rstrip("/") + "/") \
                and (best is None or len(mount) > len(best[0])):
            best = mount, parts[3], frozenset(options.split(","))
    if best is None:
        raise RuntimeError(f"{directory} is on no cgroup v1 mount")
    return best
