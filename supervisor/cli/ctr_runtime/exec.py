"""``exec``: a process in a running container's namespaces and cgroups (runtime/exec.py), under
the container's confinement: its system-call filter and paths always, its capabilities and
no_new_privileges unless ``--process`` gives its own (as runc does).

The process is ctr-runtime's child; with ``--detach`` ctr-runtime exits at once, and the engine
that called it (conmon, containerd's shim), a subreaper, becomes its parent and reaps it.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
from pathlib import Path

from supervisor.cli.ctr_runtime.console import channel
from supervisor.cli.ctr_runtime.create import shared
from supervisor.cli.ctr_runtime.log import Log
from supervisor.model import capabilities as caps
from supervisor.model import command as commands
from supervisor.model.errors import Invalid
from supervisor.model.spec import ContainerSpec, ProcessSettings, SecuritySpec
from supervisor.oci import config
from supervisor.oci import process as processes
from supervisor.oci.document import Obj, error
from supervisor.oci.state import CONFIG_COPY, Record, StateError, container_id, write_pid_file
from supervisor.runtime import process, security
from supervisor.runtime.console import receive
from supervisor.runtime.exec import spawn_in


@dataclasses.dataclass(frozen=True)
class _Exec:
    argv: tuple[str, ...]
    environment: tuple[tuple[str, str], ...]
    cwd: str
    user: str
    settings: ProcessSettings
    security: SecuritySpec


def _container(record: Record, root: Path, log: Log) -> ContainerSpec:
    """The container's spec, from the config create read (the engine may change the bundle's)."""
    document = json.loads(Path(record.directory(root), CONFIG_COPY).read_text())
    return config.parse(document, bundle=Path(record.bundle), name="exec").spec


def _from_process_file(path: str, spec: ContainerSpec, log: Log) -> _Exec:
    try:
        document = json.loads(Path(path).read_bytes())
    except OSError as exc:
        raise StateError(f"--process {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise StateError(f"--process {path}: not JSON: {exc}") from None
    warnings: list[str] = []
    given = processes.parse(Obj(document, (), processes.KNOWN, warnings))
    security = config.process_security(given, spec.security, warnings)
    for warning in warnings:
        log.warning(f"--process {path}: {warning}")
    return _Exec(given.args, given.environment, given.cwd, given.user, given.settings, security)


def _from_flags(args: argparse.Namespace, spec: ContainerSpec) -> _Exec:
    argv = args.command[1:] if args.command[:1] == ["--"] else args.command
    try:
        command = commands.command(argv)
        extra = tuple(commands.assignment(text) for text in args.env)
        added = tuple(caps.capability(name) for name in args.cap)
        groups = tuple(int(gid) for gid in args.additional_gids)
    except (Invalid, ValueError) as exc:
        raise StateError(str(exc)) from None
    environment = tuple({**dict(spec.environment), **dict(extra)}.items())
    base = spec.security
    sets = base.capability_sets
    if sets is not None:  # as runc's --cap: into the bounding, effective and permitted sets
        bits = caps.mask(added)
        sets = dataclasses.replace(sets, bounding=sets.bounding | bits,
                                   effective=sets.effective | bits,
                                   permitted=sets.permitted | bits)
    confinement = dataclasses.replace(
        base, capabilities_add=(*base.capabilities_add, *added), capability_sets=sets,
        no_new_privileges=base.no_new_privileges or args.no_new_privs)
    settings = dataclasses.replace(spec.process, groups=groups or spec.process.groups)
    return _Exec(command, environment, args.cwd or spec.effective_working_dir,
                 args.user or spec.effective_user, settings, confinement)


def run(args: argparse.Namespace, log: Log) -> int:
    root = Path(args.root)
    record = Record.load(root, container_id(args.id))
    status = record.status(root)
    if status != "running":
        raise StateError(f'cannot exec in container "{record.id}": it is {status} (only a '
                         "running container)")
    spec = _container(record, root, log)
    try:
        wanted = _from_process_file(args.process, spec, log) if args.process else \
            _from_flags(args, spec)
    except Invalid as exc:
        raise error(exc) from None
    terminal = args.tty or (bool(args.process) and wanted.settings.terminal)
    confinement = security.confinement(wanted.security, privileged=False,
                                       cache=shared(root).cache / "seccomp")
    with contextlib.ExitStack() as stack:
        sending, ours = None, None
        if terminal:
            if args.detach and not args.console_socket:
                raise StateError("a detached process with a terminal needs --console-socket")
            sending, ours = channel(args.console_socket, stack)
        pid = spawn_in(record.pid, wanted.argv, confinement=confinement, user=wanted.user,
                       environment=dict(wanted.environment), working_dir=wanted.cwd,
                       settings=wanted.settings, pass_fds=tuple(range(3, 3 + args.preserve_fds)),
                       console=None if sending is None else sending.fileno())
        master = None if ours is None else receive(ours)
        if master is not None:
            stack.callback(os.close, master)
        if args.pid_file:
            write_pid_file(args.pid_file, pid)
        if args.detach:
            return 0
        if master is not None:
            from supervisor.cli.terminal import relay_until_exit

            relay_until_exit(master, pid)
        stack.close()
        _, code = os.waitpid(pid, 0)
    return process.exit_code(code)
