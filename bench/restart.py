"""Part 3: restart latency, from ``kill -9`` of a container's PID 1 to its new PID 1 running.

The container restarts with ``policy = "always"`` and ``delay = "0"``. The clock starts just
before the SIGKILL and stops when ctrd's API first shows the container RUNNING with another PID
(polled back to back: each poll costs about a millisecond, which bounds the resolution). In
between, ctrd learns of the end through the shim's pidfd, tears the old run down (cgroup, veth,
state) and starts the new one.
"""

from __future__ import annotations

import os
import signal
import time

from bench.common import IMAGE, Section, median, ms, p95, table
from bench.daemon import Ctrd

DEFINITION = f"""\
[container]
image = "{IMAGE}"
command = ["/bin/sleep", "1000000"]
[resources]
memory_max = "64M"
pids_max = 64
[restart]
policy = "always"
delay = "0"
burst = 1000000
stop_signal = "SIGKILL"  # sleep as PID 1 ignores SIGTERM: no stop timeout at removal
"""
TIMEOUT = 30.0
# (case, definition, whether another container keeps the bridge in use): ctr removes the bridge
# with its last container, so a lone container's restart also removes and re-makes the bridge.
CASES = (("veth, alone on the bridge", "veth", False),
         ("veth, another container on the bridge", "veth", True),
         ("network none", "none", False))


def one_restart(ctrd: Ctrd, name: str) -> float:
    old = ctrd.get(name)["pid"]
    begin = time.perf_counter()
    os.kill(old, signal.SIGKILL)
    while time.perf_counter() - begin < TIMEOUT:
        view = ctrd.get(name)
        if view["state"] == "running" and view["pid"] not in (None, old):
            return time.perf_counter() - begin
    raise RuntimeError(f"{name} not running again {TIMEOUT:.0f}s after kill -9")


def measure(prefix: str, pool: str, runs: int) -> Section:
    section = Section("Restart latency after kill -9 of PID 1")
    samples: dict[str, list[float]] = {}
    counted: dict[str, int] = {}
    with Ctrd(prefix, f"{prefix}br2", pool, {"veth": DEFINITION,
                                             "none": DEFINITION + '[network]\nmode = "none"\n'
                                             }) as ctrd:
        for case, definition, neighbour in CASES:
            name = f"{prefix}k{len(samples)}"
            if neighbour:
                ctrd.launch(definition, f"{prefix}kn")
            ctrd.launch(definition, name)
            one_restart(ctrd, name)  # warm-up
            samples[case] = [one_restart(ctrd, name) for _ in range(runs)]
            counted[case] = ctrd.get(name)["restarts"]
            ctrd.remove(name)
            if neighbour:
                ctrd.remove(f"{prefix}kn")
    section.add(
        f"`policy = \"always\"`, `delay = \"0\"`; {runs} kills each, after one untimed; "
        "milliseconds; the last column is ctrd's own count of restarts.",
        table(["container", "median", "p95", "restarts"],
              [[case, ms(median(values)), ms(p95(values)), counted[case]]
               for case, values in samples.items()]),
        "No target in the issue; for scale, a start through the API is in the first table.")
    section.data = {"runs": runs, "samples_s": samples}
    return section
