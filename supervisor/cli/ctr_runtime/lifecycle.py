"""The commands on an existing container: ``start``, ``state``, ``kill``, ``delete``, ``pause``,
``resume``, ``ps`` and ``list``, each allowed in the states the runtime spec allows it, with the
error otherwise (operation on a container that does not exist; start of one not created; delete
of one not stopped, without --force; kill of one neither created nor running).

The messages keep runc's words where engines match them: podman and containerd take "does not
exist" for a container gone, containerd "container not running" for a kill that found none.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Sequence

from supervisor.cli.ctr_runtime import cgroups
from supervisor.cli.ctr_runtime.log import Log
from supervisor.oci.state import FIFO, TYPE_CHECKING, Record, StateError, container_id, ids

if TYPE_CHECKING:
    from typing import Any

_GONE_TIMEOUT = 10.0
_LIVE = ("created", "running", "paused")


def _load(args: argparse.Namespace) -> tuple[str, Record, str]:
    root = str(args.root)
    record = Record.load(root, container_id(args.id))
    return root, record, record.status(root)


def state(args: argparse.Namespace, log: Log) -> int:
    root, record, _ = _load(args)
    print(json.dumps(record.oci_state(root), indent=2))
    return 0


def start(args: argparse.Namespace, log: Log) -> int:
    from supervisor.runtime import execfifo

    root, record, status = _load(args)
    if status != "created":
        raise StateError(f'cannot start container "{record.id}": it is {status} (only a created '
                         "container can be started)")
    fifo = os.path.join(record.directory(root), FIFO)
    execfifo.release(fifo)
    os.unlink(fifo)
    run_hooks(record, "poststart", root, log)
    return 0


def run_hooks(record: Record, kind: str, root: str, log: Log) -> None:
    """poststart and poststop hooks: a failure is a warning, as the spec has it."""
    stored = record.hooks.get(kind) or []
    if not stored:
        return
    from supervisor.model.spec import Hook
    from supervisor.runtime import hooks

    listed = [Hook(h["path"], tuple(h["args"]), tuple((k, v) for k, v in h["env"]),
                   h["timeout"]) for h in stored]
    try:
        hooks.run(listed, kind, record.oci_state(root))
    except hooks.HookError as exc:
        log.warning(str(exc))


def _signal(text: str) -> int:
    from supervisor.model.signals import signal as parse

    try:
        return int(parse(text))
    except ValueError as exc:
        raise StateError(str(exc)) from None


def kill(args: argparse.Namespace, log: Log) -> int:
    _, record, status = _load(args)
    number = _signal(args.signal)
    if status not in _LIVE:
        raise StateError(f'cannot kill container "{record.id}": container not running (it is '
                         f"{status})")
    if args.all:
        cgroup = cgroups.reopen(record.cgroup)
        if cgroup is not None:
            cgroup.kill(number)
            return 0
    _signal_pid1(record, number)
    return 0


def _signal_pid1(record: Record, number: int) -> None:
    """``number`` to PID 1 through a pidfd taken while it is still the process we started."""
    from supervisor.oci.state import alive

    try:
        pidfd = os.pidfd_open(record.pid)
    except ProcessLookupError:
        raise StateError(f'container "{record.id}": container not running') from None
    try:
        if not alive(record.pid, record.pid_start):
            raise StateError(f'container "{record.id}": container not running')
        with contextlib.suppress(ProcessLookupError):
            signal.pidfd_send_signal(pidfd, number)
    finally:
        os.close(pidfd)


def delete(args: argparse.Namespace, log: Log) -> int:
    import shutil

    root = str(args.root)
    cid = container_id(args.id)
    try:
        record = Record.load(root, cid)
    except StateError:
        if args.force:  # none, or a create that never got to its record: nothing, as with runc
            shutil.rmtree(os.path.join(root, cid), ignore_errors=True)
            return 0
        raise
    status = record.status(root)
    if status != "stopped" and not args.force:
        raise StateError(f'cannot delete container "{cid}" that is not stopped: {status} (stop '
                         "it first, or delete --force)")
    if status != "stopped" and record.pid:
        with contextlib.suppress(StateError):
            _signal_pid1(record, signal.SIGKILL)
    # A stopped container's cgroup is mostly empty; any other one the driver empties (it also
    # kills what a frozen cgroup holds).
    if record.cgroup and not (status == "stopped" and cgroups.remove_if_empty(record.cgroup)):
        cgroup = cgroups.reopen(record.cgroup)
        if cgroup is not None:
            cgroup.destroy()
    _wait_gone(record)
    run_hooks(record, "poststop", root, log)
    shutil.rmtree(record.directory(root), ignore_errors=True)
    return 0


def _wait_gone(record: Record) -> None:
    """Until PID 1 has exited (a zombie its reaper has yet to collect counts as gone)."""
    from supervisor.oci.state import alive

    deadline = time.monotonic() + _GONE_TIMEOUT
    while record.pid and alive(record.pid, record.pid_start):
        if time.monotonic() > deadline:
            raise StateError(f'container "{record.id}": its process did not exit')
        time.sleep(0.005)


def pause(args: argparse.Namespace, log: Log) -> int:
    _, record, status = _load(args)
    if status != "running":
        raise StateError(f'cannot pause container "{record.id}": it is {status} (only a running '
                         "container can be paused)")
    cgroup_of(record).freeze()
    return 0


def resume(args: argparse.Namespace, log: Log) -> int:
    _, record, status = _load(args)
    if status != "paused":
        raise StateError(f'cannot resume container "{record.id}": it is {status}, not paused')
    cgroup_of(record).thaw()
    return 0


def cgroup_of(record: Record) -> Any:
    cgroup = cgroups.reopen(record.cgroup)
    if cgroup is None:
        raise StateError(f'container "{record.id}": its cgroup is gone')
    return cgroup


def ps(args: argparse.Namespace, log: Log) -> int:
    _, record, status = _load(args)
    if status not in _LIVE:
        raise StateError(f'container "{record.id}": container not running')
    pids = cgroup_of(record).pids()
    if args.format == "json":
        print(json.dumps(pids))
        return 0
    rows = [("UID", "PID", "PPID", "CMD")]
    for pid in pids:
        with contextlib.suppress(OSError):
            rows.append(_process_row(pid))
    _table(rows)
    return 0


def _process_row(pid: int) -> tuple[str, str, str, str]:
    with open(f"/proc/{pid}/status") as f:
        fields = dict(line.split(":", 1) for line in f if ":" in line)
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        command = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    return (fields["Uid"].split()[0], str(pid), fields["PPid"].strip(),
            command or f"[{fields['Name'].strip()}]")


def _table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        sys.stdout.write("   ".join(cell.ljust(width) for cell, width in zip(row, widths,
                                                                          strict=True)).rstrip())
        sys.stdout.write("\n")


def listing(args: argparse.Namespace, log: Log) -> int:
    root = str(args.root)
    states = []
    for cid in ids(root):
        with contextlib.suppress(StateError):
            states.append(Record.load(root, cid).oci_state(root))
    if args.quiet:
        for entry in states:
            print(entry["id"])
    elif args.format == "json":
        print(json.dumps(states))
    else:
        _table([("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")] + [
            (s["id"], str(s["pid"]), s["status"], s["bundle"], s["created"], s["owner"])
            for s in states])
    return 0
