"""``create`` and ``run``: a bundle's container built by the runtime core (runtime/container.py),
left with its process waiting on the exec FIFO (runtime/lifecycle.py) for ``start``.

PID 1 is not ctr-shim's child here, as it is under ctrd: the engines that call an OCI runtime
(conmon, containerd's shim) make themselves subreapers, wait for the pid of ``--pid-file`` and
take its exit status themselves, so PID 1 must become their child, as runc's does. The
intermediate that makes the pid namespace exits once it forked PID 1, which the kernel then hands
to the caller's nearest subreaper; nothing of ctr-runtime stays. ``run`` without ``--detach`` is
that subreaper itself, waits, and deletes the container when it ends.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import os
import shutil
import signal
from pathlib import Path
from typing import Any

from supervisor.cli.ctr_runtime import cgroups, console
from supervisor.cli.ctr_runtime.lifecycle import delete
from supervisor.cli.ctr_runtime.log import Log
from supervisor.model.names import is_container_name
from supervisor.model.spec import Hook
from supervisor.oci import config
from supervisor.oci.state import (
    CONFIG_COPY,
    CORE,
    FIFO,
    SHARED,
    Record,
    StateError,
    container_id,
    now,
    start_time,
    write_pid_file,
)
from supervisor.runtime import syscalls
from supervisor.runtime.console import receive
from supervisor.runtime.container import Container, Options
from supervisor.runtime.lifecycle import Lifecycle
from supervisor.runtime.paths import Dirs

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
             signal.SIGUSR2, signal.SIGWINCH)


def shared(root: Path) -> Dirs:
    """The runtime core's directories for what the containers of ``root`` share."""
    return Dirs(state=root / SHARED, data=root / SHARED)


def name_of(cid: str) -> str:
    """The container's name in ctr's terms: the id if it is one (at most 63 characters of a
    safe alphabet), else a short digest of it (podman's ids are 64 hex digits)."""
    return cid if is_container_name(cid) else "oci-" + hashlib.sha256(cid.encode()).hexdigest()[:16]


def _hooks(hooks: tuple[Hook, ...]) -> list[dict[str, Any]]:
    return [dataclasses.asdict(hook) for hook in hooks]


def make(args: argparse.Namespace, log: Log,
         stack: contextlib.ExitStack) -> tuple[Record, int | None]:
    """Create the container; its record, and the pty master when ``run`` relays a terminal."""
    root = Path(args.root)
    cid = container_id(args.id)
    bundle = Path(args.bundle).resolve()
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory = root / cid
    try:
        directory.mkdir(mode=0o711)
    except FileExistsError:
        raise StateError(f'container with id "{cid}" already exists') from None
    try:
        return _create(args, log, stack, root, cid, bundle)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise


def _create(args: argparse.Namespace, log: Log, stack: contextlib.ExitStack, root: Path,
            cid: str, bundle: Path) -> tuple[Record, int | None]:
    directory = root / cid
    loaded = config.load(bundle, name=name_of(cid), systemd_cgroup=args.systemd_cgroup)
    for warning in loaded.warnings:
        log.warning(warning)
    spec = loaded.spec
    shutil.copyfile(bundle / config.CONFIG, directory / CONFIG_COPY)
    record = Record(id=cid, bundle=str(bundle), oci_version=loaded.oci_version,
                    rootfs=spec.image, created=now(), annotations=dict(spec.annotations),
                    hooks={"poststart": _hooks(spec.hooks.poststart),
                           "poststop": _hooks(spec.hooks.poststop)})
    record.save(root)  # "creating" from here on
    where = cgroups.placement(spec, cid, args.systemd_cgroup)
    os.mkfifo(directory / FIFO, 0o600)
    sending, ours = None, None
    if spec.process.terminal:
        if not args.console_socket and getattr(args, "detach", True):
            raise StateError("process.terminal is set: give --console-socket to receive the "
                             "terminal (or run without --detach)")
        sending, ours = console.channel(args.console_socket, stack)
    elif args.console_socket:
        raise StateError("--console-socket is for a process with a terminal (process.terminal)")

    def oci_state(pid: int, status: str) -> dict[str, Any]:
        return {"ociVersion": record.oci_version, "id": cid, "status": status, "pid": pid,
                "bundle": record.bundle, "annotations": record.annotations}

    steps = Lifecycle(str(directory / FIFO), spec.hooks, oci_state,
                      new_keyring=not args.no_new_keyring,
                      console=None if sending is None else sending.fileno(),
                      console_size=spec.process.console_size)
    container = Container(spec, shared(root), cgroups.driver(where), Options(
        state_dir=directory / CORE, cgroup_name=where["name"], shim=False, steps=steps,
        pass_fds=tuple(range(3, 3 + args.preserve_fds)), no_pivot=args.no_pivot))
    container.start()
    master = None if ours is None else receive(ours)
    if master is not None:
        stack.callback(os.close, master)
    assert container.pid is not None and container.cgroup is not None
    record.pid, record.pid_start = container.pid, start_time(container.pid)
    where["directories"] = [str(path) for path in container.cgroup.directories()]
    record.cgroup, record.freezer = where, cgroups.freezer_file(container.cgroup)
    record.save(root)
    if args.pid_file:
        write_pid_file(args.pid_file, container.pid)
    return record, master


def create(args: argparse.Namespace, log: Log) -> int:
    with contextlib.ExitStack() as stack:
        make(args, log, stack)
    return 0


def run(args: argparse.Namespace, log: Log) -> int:
    """create, start and, without --detach, wait for the process as its subreaper, relaying
    signals (and a terminal), then delete the container (unless --keep)."""
    from supervisor.cli.ctr_runtime import lifecycle

    if not args.detach:
        syscalls.prctl(syscalls.PR_SET_CHILD_SUBREAPER, 1)
    with contextlib.ExitStack() as stack:
        record, master = make(args, log, stack)
        lifecycle.start(args, log)
        if args.detach:
            return 0
        for sig in FORWARDED:
            signal.signal(sig, lambda signum, _frame: _forward(record.pid, signum))
        if master is not None:
            from supervisor.cli.terminal import relay_until_exit

            relay_until_exit(master, record.pid)
        code = _reap(record.pid)
    if not args.keep:
        delete(argparse.Namespace(root=args.root, id=record.id, force=True), log)
    return code


def _forward(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _reap(pid: int) -> int:
    """Wait for ``pid`` (our child now, as its subreaper), reaping the orphans that come to us
    as well; its exit code, 128 + N for a death by signal N."""
    while True:
        try:
            found, status = os.waitpid(-1, 0)
        except InterruptedError:
            continue
        except ChildProcessError:
            return 255
        if found == pid:
            code = os.waitstatus_to_exitcode(status)
            return 128 - code if code < 0 else code
