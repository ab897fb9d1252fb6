"""``ctrctl wait NAME``: the main process of ``ctr@NAME.service``.

It keeps that unit active while ctrd keeps the container (running, backing off between restarts,
or while ctrd itself restarts) and ends with the container: 0 once it is stopped or exited
cleanly, the container's exit code when it exited with one, 1 when its restart budget is spent
(FAILED), so systemd marks the unit failed. It polls ctrd's API, which costs one small request
a second; one runs per systemd-managed container, so it imports nothing beyond the client.
"""

from __future__ import annotations

import argparse
import time

from supervisor.cli.client import ApiError, Client, Unreachable
from supervisor.cli.containers import container_path

_ENDED = ("stopped", "exited", "failed")


def _wait(args: argparse.Namespace) -> int:
    client = Client(args.socket)
    while True:
        try:
            view = client.call("GET", container_path(args.name))
        except Unreachable:  # ctrd restarting: the container goes on, and so do we
            view = None
        except ApiError as exc:
            if exc.status != 404:
                raise
            return 1  # the definition is gone: nothing left to wait for
        if view is not None and view["state"] in _ENDED:
            if view["state"] == "failed":
                reason = view.get("reason") or "restart budget spent"
                print(f"container {args.name} failed: {reason}")
                return 1
            return int(view.get("exit_code") or 0) if view["state"] == "exited" else 0
        time.sleep(args.interval)


def configure(verb: str, p: argparse.ArgumentParser) -> None:
    p.add_argument("name")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between polls")
    p.set_defaults(func=_wait)
