"""Part 1: start latency of /bin/true in the busybox image, every runtime in the same rounds.

Each round runs every contender once, in the same order, so a colleague's test that loads the
machine for a while slows them all alike. A command-line runtime is timed from fork to its exit
(its container removed): runc, crun, systemd-nspawn, ``podman run --rm`` on crun and on runc, and
``ctrctl run --rm`` both ways, started by ctrctl itself (its own pool) and handed to the
benchmark's ctrd (``--daemon``; by the installed command, its compiled front end, and by the
Python command alone). An API start is timed from the request to ctrd's answer, which
comes once PID 1 has exec'd in all its namespaces with its veth, address and cgroup limits
(state RUNNING); the instance is then deleted, untimed, before the next round.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from bench import host, peers
from bench.common import CTRCTL, IMAGE, Section, median, ms, p95, table, timed, verdict
from bench.daemon import Ctrd
from supervisor.runtime.network import remove_bridge_if_unused

API_DEFINITION = f"""\
[container]
image = "{IMAGE}"
command = ["/bin/true"]
[network]
mode = "{{mode}}"
[resources]
memory_max = "64M"
cpu_quota = "50%"
pids_max = 64
"""


@contextlib.contextmanager
def nspawn_directory() -> Iterator[None]:
    """/run/systemd/nspawn must exist for the tmpfs over it; remove it after if we made it."""
    made = not peers.NSPAWN_DIR.exists()
    peers.NSPAWN_DIR.mkdir(parents=True, exist_ok=True)
    try:
        yield
    finally:
        if made:
            with contextlib.suppress(OSError):
                peers.NSPAWN_DIR.rmdir()


def command_timer(make: peers.Command) -> Callable[[], float]:
    return lambda: timed(make())


def api_start(ctrd: Ctrd, definition: str, tag: str) -> Callable[[], float]:
    counter = iter(range(10**9))

    def start() -> float:
        name = f"{tag}{next(counter)}"
        begin = time.perf_counter()
        ctrd.launch(definition, name)
        elapsed = time.perf_counter() - begin
        # DELETE only once ctrd has seen the end: one racing the exit gets a 500 (see
        # docs/benchmarks.md); and it waits for the teardown, so no start overlaps another's.
        ctrd.wait_state(name, "exited")
        ctrd.remove(name)
        return elapsed
    return start


def measure(prefix: str, pools: tuple[str, str, str], runs: int) -> Section:
    """``pools``: ctrd's, ctrctl's own, and that of a second ctrd whose state directory is on a
    tmpfs, as /run is where systemd is PID 1 (on this VM /run is on the disk's ext4)."""
    section = Section("Start latency of /bin/true")
    workdir = Path(tempfile.mkdtemp(prefix=f"ctr-bench-{prefix}-start-"))
    bridge = f"{prefix}br1"  # ctrctl run's; ctrd has its own, on another pool
    definitions = {"apiveth": API_DEFINITION.format(mode="veth"),
                   "apinone": API_DEFINITION.format(mode="none")}
    try:
        with nspawn_directory(), Ctrd(prefix, f"{prefix}br0", pools[0], definitions) as ctrd, \
                Ctrd(prefix, f"{prefix}br2", pools[2], definitions, state_tmpfs=True) as tmpfs:
            contenders = {name: command_timer(make) for name, make
                          in peers.peers(peers.oci_bundle(workdir), prefix).items()}
            for runtime in peers.PODMAN_RUNTIMES:
                contenders[f"podman run --rm ({runtime})"] = command_timer(
                    peers.podman(workdir, runtime, prefix))
            for network in ("veth", "none"):
                contenders[f"ctrctl run --rm ({network})"] = command_timer(peers.ctrctl_run(
                    workdir / "state", workdir / "data", pools[1], bridge, f"{prefix}r", network))
                contenders[f"ctrctl run --rm via ctrd ({network})"] = command_timer(
                    peers.ctrctl_daemon_run(ctrd.socket, f"{prefix}d", network))
                contenders[f"ctrctl run --rm via ctrd ({network}, Python only)"] = command_timer(
                    peers.ctrctl_daemon_run(ctrd.socket, f"{prefix}p", network, CTRCTL))
                contenders[f"ctrd API start ({network})"] = api_start(
                    ctrd, f"api{network}", f"{prefix}a{network[0]}")
            for network in ("veth", "none"):  # the same on a tmpfs, after the rest
                contenders[f"ctrctl run --rm via ctrd ({network}, state on tmpfs)"] = \
                    command_timer(peers.ctrctl_daemon_run(tmpfs.socket, f"{prefix}t", network))
                contenders[f"ctrd API start ({network}, state on tmpfs)"] = api_start(
                    tmpfs, f"api{network}", f"{prefix}s{network[0]}")
            # What the default system-call filter costs a start: the same run without it.
            contenders["ctrctl run --rm (none, seccomp=unconfined)"] = command_timer(
                peers.ctrctl_run(workdir / "state", workdir / "data", pools[1], bridge,
                                 f"{prefix}u", "none", "--security-opt", "seccomp=unconfined"))
            samples: dict[str, list[float]] = {name: [] for name in contenders}
            for measure_one in contenders.values():  # warm the caches once, untimed
                measure_one()
            for _ in range(runs):
                for name, measure_one in contenders.items():
                    samples[name].append(measure_one())
            # ctrctl run keeps its bridge for the next run, as docker0 stays: gone with the part
            remove_bridge_if_unused(workdir / "state", bridge)
    finally:
        peers.remove_podman(workdir, prefix)
        host.sweep(prefix, workdir, section.add)
    report(section, samples, runs)
    return section


def report(section: Section, samples: dict[str, list[float]], runs: int) -> None:
    medians = {name: median(values) for name, values in samples.items()}
    runc, crun = medians["runc run"], medians["crun run"]
    rows = [[name, ms(medians[name]), ms(p95(values)), f"{medians[name] / runc:.2f}",
             f"{medians[name] / crun:.2f}"] for name, values in samples.items()]
    api = medians["ctrd API start (veth)"]
    filtered = medians["ctrctl run --rm (none)"]
    unfiltered = medians["ctrctl run --rm (none, seccomp=unconfined)"]
    section.add(
        f"{runs} runs each, interleaved; milliseconds.",
        f"The default system-call filter costs a start {ms(filtered - unfiltered)} ms "
        f"({(filtered - unfiltered) / unfiltered:+.1%}; compiled once, then read from a cache).",
        table(["runtime", "median", "p95", "x runc", "x crun"], rows),
        table(["target (issue 17)", "result", "verdict"], [
            *(_target(medians, f"ctrctl run --rm via ctrd ({network})", "runc run", 1.0)
              for network in ("none", "veth")),
            _target(medians, "ctrctl run --rm (none)", "runc run", 3.0),
            _target(medians, "ctrctl run --rm (veth)", "runc run", 4.0),
            ["ctrd API start (veth) <= 0.5 x crun run", f"{api / crun:.2f} x crun",
             verdict(api, 0.5 * crun)],
            *(_target(medians, "ctrd API start (none)", peer, 1.0)
              for peer in ("podman run --rm (crun)", "podman run --rm (runc)",
                           "systemd-nspawn")),
        ]))
    section.data = {"runs": runs, "samples_s": samples}


def _target(medians: dict[str, float], name: str, peer: str, ratio: float) -> list[str]:
    """A row: ``name``'s median against ``ratio`` times ``peer``'s."""
    value, against = medians[name], medians[peer]
    return [f"{name} <= {ratio:g} x {peer}", f"{value / against:.2f} x", verdict(value,
                                                                               ratio * against)]
