"""Part 3: restart latency, from ``kill -9`` of a container's PID 1 to its new PID 1 running.

The container restarts with ``policy = "always"`` and ``delay = "0"``. The clock starts just
before the SIGKILL and stops when ctrd's API first shows the container RUNNING with another PID
(polled back to back: each poll costs about a millisecond, which bounds the resolution). In
between, ctrd learns of the end through the shim's pidfd, tears the old run down (cgroup, the
veth renamed out of the way for the kernel to remove with its namespace, state) and starts the
new one, from a start its warm pool prepared (supervisor/runtime/warm.py) when one is ready;
each kill waits for that (``PREPARED``), as the restarts of one container are seconds apart in
real life, not back to back. The same restarts with ``warm_pool = 0`` are beside them.

Before and after a change, alternately: ``.venv/bin/python -m bench.restart --before TREE``
runs ctrd from ``TREE`` (a worktree of the commit before, its helpers built, byte-compiled) and
from this one in turns, with the pool, a veth container alone on the bridge.
"""

from __future__ import annotations

import argparse
import os
import signal
import time
from pathlib import Path

from bench.common import IMAGE, Section, median, ms, p95, table, verdict
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
PREPARED = 0.15  # between kills: the pool prepares the next start meanwhile (~25 ms of work)
TARGET_S = 0.020  # issue 17, goal 3: with veth
# (case, definition, whether another container is on the bridge too)
CASES = (("veth, alone on the bridge", "veth", False),
         ("veth, another container on the bridge", "veth", True),
         ("network none", "none", False))
WARM_POOLS = ("2", "0")  # ctrd's default, and none
# The veth cases again with ctrd's state directory on a tmpfs, as /run is under systemd (on this
# machine /run is on the disk's ext4): (warm_pool, state on tmpfs) of each ctrd.
CTRDS = ((WARM_POOLS[0], False), (WARM_POOLS[1], False), (WARM_POOLS[0], True))
TMPFS = "state on tmpfs"


def one_restart(ctrd: Ctrd, name: str) -> float:
    old = ctrd.get(name)["pid"]
    begin = time.perf_counter()
    os.kill(old, signal.SIGKILL)
    while time.perf_counter() - begin < TIMEOUT:
        view = ctrd.get(name)
        if view["state"] == "running" and view["pid"] not in (None, old):
            return time.perf_counter() - begin
    raise RuntimeError(f"{name} not running again {TIMEOUT:.0f}s after kill -9")


def restarts(ctrd: Ctrd, definition: str, name: str, runs: int) -> list[float]:
    """``runs`` timed restarts of a new instance ``name`` of ``definition``, after one untimed,
    each after the pool had time to prepare the next start; the instance is left running."""
    ctrd.launch(definition, name)
    one_restart(ctrd, name)  # warm-up
    samples = []
    for _ in range(runs):
        time.sleep(PREPARED)
        samples.append(one_restart(ctrd, name))
    return samples


def measure(prefix: str, pool: str, runs: int) -> Section:
    section = Section("Restart latency after kill -9 of PID 1")
    samples: dict[str, list[float]] = {}
    counted: dict[str, int] = {}
    for size, tmpfs in CTRDS:
        os.environ["CTR_WARM_POOL"] = size  # ctrd's, inherited
        own = f"{prefix}{size}{'t' if tmpfs else ''}"
        try:
            with Ctrd(own, f"{own}br", pool,
                      {"veth": DEFINITION,
                       "none": DEFINITION + '[network]\nmode = "none"\n'},
                      state_tmpfs=tmpfs) as ctrd:
                for case, definition, neighbour in CASES:
                    if tmpfs and definition != "veth":
                        continue
                    case = f"{case}, warm_pool = {size}{f', {TMPFS}' if tmpfs else ''}"
                    name = f"{own}k{len(samples)}"
                    if neighbour:
                        ctrd.launch(definition, f"{own}kn")
                    samples[case] = restarts(ctrd, definition, name, runs)
                    counted[case] = ctrd.get(name)["restarts"]
                    ctrd.remove(name)
                    if neighbour:
                        ctrd.remove(f"{own}kn")
        finally:
            del os.environ["CTR_WARM_POOL"]

    def worst(tmpfs: bool) -> float:
        """The slower veth case's median with the pool, state on the disk or on tmpfs."""
        return max(median(values) for case, values in samples.items()
                   if case.startswith("veth") and f"= {WARM_POOLS[0]}" in case
                   and (TMPFS in case) == tmpfs)
    section.add(
        f"`policy = \"always\"`, `delay = \"0\"`; {runs} kills each, {PREPARED:g} s apart, "
        "after one untimed; milliseconds; the last column is ctrd's own count of restarts.",
        table(["container", "median", "p95", "restarts"],
              [[case, ms(median(values)), ms(p95(values)), counted[case]]
               for case, values in samples.items()]),
        table(["target (issue 17)", "result", "verdict"],
              [[f"restart with veth <= {ms(TARGET_S)} ms (median, the slower veth case)"
                f"{where}", f"{ms(worst(tmpfs))} ms", verdict(worst(tmpfs), TARGET_S)]
               for where, tmpfs in (("", False), (f"; {TMPFS}", True))]))
    section.data = {"runs": runs, "samples_s": samples}
    return section


def compare(before: str, rounds: int, runs: int, tmpfs: bool = False) -> dict[str, list[float]]:
    """Restarts under ctrd from ``before`` and from this tree, ``runs`` each in ``rounds`` turns
    (ctrd takes its package from ``PYTHONPATH``, which it inherits); ``tmpfs``: its state
    directory on a tmpfs."""
    samples: dict[str, list[float]] = {"before": [], "after": []}
    trees = (("before", before), ("after", str(Path(__file__).resolve().parent.parent)))
    os.environ["CTR_WARM_POOL"] = WARM_POOLS[0]
    try:
        for _ in range(rounds):
            for label, tree in trees:
                os.environ["PYTHONPATH"] = tree
                with Ctrd("rab", "rabbr", "10.231.48.0/20", {"veth": DEFINITION},
                          state_tmpfs=tmpfs) as ctrd:
                    samples[label] += restarts(ctrd, "veth", "rab", runs)
                    ctrd.remove("rab")
    finally:
        os.environ.pop("PYTHONPATH", None)
        del os.environ["CTR_WARM_POOL"]
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.restart", description=compare.__doc__)
    parser.add_argument("--before", required=True, metavar="TREE")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--state-tmpfs", action="store_true",
                        help="ctrd's state directory on a tmpfs, as /run is under systemd")
    args = parser.parse_args()
    samples = compare(args.before, args.rounds, args.runs, args.state_tmpfs)
    print(table(["ctrd", "median ms", "p95 ms", "restarts"],
                [[label, ms(median(values)), ms(p95(values)), len(values)]
                 for label, values in samples.items()]))


if __name__ == "__main__":
    main()
