"""``ctrd``: the long-running supervisor, in the foreground, logging to stderr.

This is where ctrd is composed, at the top of the layers: the supervisor (``supervisor.daemon``),
its HTTP API (``supervisor.api``) with the graders' interface plugged in
(``supervisor.graders``), and the metrics (``supervisor.metrics``).

SIGHUP re-reads the definitions; SIGTERM or SIGINT ends ctrd and leaves every container running
(their shims and records stay, so the next ctrd adopts them).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import signal
import sys
from collections.abc import Sequence
from functools import partial

from supervisor.api import sd
from supervisor.api.server import Bound, bind, serve
from supervisor.api.tcp import TcpListener, tcp_listener
from supervisor.config.daemon import DaemonConfig, daemon_config
from supervisor.daemon.supervisor import Supervisor
from supervisor.graders import routes as graders_routes
from supervisor.graders.service import Graders
from supervisor.metrics import serve_metrics
from supervisor.runtime import network
from supervisor.systemd.notify import listen_fds, notify, watchdog_interval

log = logging.getLogger("ctrd")

FLAGS = ("config_dir", "state_dir", "data_dir", "metrics_listen", "api_listen", "api_token_file",
         "api_tls_cert", "api_tls_key", "api_tls_client_ca", "cgroup_driver", "warm_pool")


# How long a thread holding the GIL runs before another that waits for it gets it (Python's
# default: 5 ms). The metrics are collected in threads of their own; with the default, the event
# loop waited up to that long for each of its turns while a scrape ran.
SWITCH_INTERVAL = 0.001


def tune_interpreter() -> None:
    """The interpreter as ctrd runs: the short switch interval, and what was made so far (the
    modules, ~100k objects) out of the garbage collector's full collections, which otherwise
    scan it all again each time."""
    sys.setswitchinterval(SWITCH_INTERVAL)
    gc.freeze()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ctrd", description="The ctr container supervisor.")
    for flag in FLAGS:
        parser.add_argument("--" + flag.replace("_", "-"), dest=flag)
    parser.add_argument("--log-level", default=os.environ.get("CTR_LOG_LEVEL", "INFO"))
    return parser.parse_args(argv)


async def _watchdog(interval: float) -> None:
    while True:
        notify("WATCHDOG=1")
        await asyncio.sleep(interval)


async def run(config: DaemonConfig, bound: Bound, stored_fds: Sequence[tuple[str, int]] = (),
              tcp: TcpListener | None = None) -> int:
    loop = asyncio.get_running_loop()
    supervisor = Supervisor(config, stored_fds)
    graders = Graders(supervisor, config.data_dir)  # before recover: it finds their specs
    supervisor.load_definitions()
    await supervisor.recover()
    metrics = serve_metrics(supervisor, config.metrics_listen)  # in threads of its own
    listen = config.metrics_listen
    runner = await serve(supervisor, bound, tcp, [
        partial(graders_routes.install, service=graders),
        sd.advertise(None if metrics is None or listen is None else (listen[0], metrics.port))])
    done = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, done.set)
    loop.add_signal_handler(signal.SIGHUP, lambda: log.info(
        "reloaded; changed: %s", supervisor.load_definitions() or "none"))
    notify("READY=1")
    log.info("ready: %d container(s) adopted or started, API on %s", len(supervisor.units),
             config.state_dir / "ctrd.sock")
    watchdog = None
    if (interval := watchdog_interval()) is not None:
        watchdog = loop.create_task(_watchdog(interval))
    await done.wait()
    notify("STOPPING=1")
    if watchdog:
        watchdog.cancel()
    await runner.cleanup()
    if metrics is not None:
        metrics.close()
    if supervisor.ctx.relay is not None:
        supervisor.ctx.relay.close()
    supervisor.images.close()  # queued pulls dropped; their containers start with the next ctrd
    if supervisor.warm is not None:
        supervisor.warm.close()  # its prepared starts are ctrd's children: they would die anyway
    # Kept while we ran, so restarting a lone container did not re-make it (docker0 stays too).
    network.remove_bridge_if_unused(config.state_dir, config.bridge)
    log.info("stopped; containers keep running and will be adopted by the next ctrd")
    return 0


def main(argv: list[str] | None = None) -> int:
    stored_fds = listen_fds()  # first: until marked close-on-exec, any child would inherit them
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        config = daemon_config({flag: getattr(args, flag) for flag in FLAGS}, os.environ)
        tcp = tcp_listener(config)  # its token and TLS files, before anything starts
        # Bound before a container is adopted or started: a socket ctrd cannot have (a port
        # in use, another ctrd on the state directory) ends it here, with nothing unsupervised.
        bound = bind(config.state_dir / "ctrd.sock", tcp)
    except (ValueError, OSError) as exc:
        print(f"ctrd: {exc}", file=sys.stderr)
        notify(f"STATUS=ctrd: {exc}")
        return 2
    tune_interpreter()
    return asyncio.run(run(config, bound, stored_fds, tcp))


if __name__ == "__main__":
    sys.exit(main())
