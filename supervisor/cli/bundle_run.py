"""``ctrctl run --bundle DIR``: an OCI bundle run in the foreground, as ``ctr-runtime run`` runs
it (the same code: its process, terminal, signals, exit status, and the container deleted
after), with its state under ctrctl's state directory (``STATE_DIR/bundles``). The container is
the bundle's whole: of ctrctl's flags only ``--name`` applies, and any other is refused rather
than ignored."""

from __future__ import annotations

import argparse
from pathlib import Path

from supervisor.cli.ctr_runtime import create
from supervisor.cli.ctr_runtime.log import Log
from supervisor.cli.runargs import bad_option

OWN = ("name", "cwd")  # the options a bundle's run takes (runargs.options adds cwd)


def run(args: argparse.Namespace, given: dict[str, object]) -> int:
    implicit = {"tty": not args.tty, "env": not args.env}  # the classic shell's, on a terminal
    for key in given:
        if key not in OWN and not implicit.get(key):
            bad_option(args, key, "not with --bundle: the bundle's config.json says it")
    runtime = argparse.Namespace(
        root=str(Path(args.state_dir) / "bundles"), bundle=args.bundle, id=given["name"],
        detach=False, keep=False, console_socket=None, pid_file=None, no_pivot=False,
        no_new_keyring=False, preserve_fds=0, systemd_cgroup=False)
    return create.run(runtime, Log())
