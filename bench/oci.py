"""ctr-runtime against crun and runc (issue 14): ``podman run --rm /bin/true`` on each of the
three, and each one's own ``run`` of the same bundle (bench.peers: runc's default config with a
cgroup namespace and the limits of every start measured here), all in the same rounds; then what
each command an engine calls costs on its own (create, start, state, kill, delete), against runc.

podman calls its runtime several times per container (create, start, delete; state and kill
when stopping), so a Python runtime pays its interpreter's start at each. ctr-runtime's compiled
front end (shim/ctr-runtime.c) answers start, state, kill and delete itself and hands the rest
to the Python command; both are measured, the Python command alone as the row "Python only".
"""

from __future__ import annotations

import itertools
import json
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench import host, peers
from bench.common import REPO, VENV_BIN, Section, median, ms, p95, table, timed, verdict

CTR_RUNTIME = str(REPO / "supervisor" / "runtime" / "libexec" / "ctr-runtime")  # the front end
PYTHON_RUNTIME = str(VENV_BIN / "ctr-runtime")  # the Python command alone
RUNTIMES = (("runc", "runc"), ("ctr-runtime", CTR_RUNTIME), ("ctr-runtime, Python only",
                                                              PYTHON_RUNTIME))
COMMANDS = ("create", "start", "state", "kill", "delete")


def _runtime_run(root: Path, bundle: Path, tag: str) -> peers.Command:
    counter = itertools.count()
    return lambda: [CTR_RUNTIME, "--root", str(root), "run", "--bundle", str(bundle),
                    f"{tag}-{next(counter)}"]


def _sleeper(directory: Path) -> Path:
    """The same bundle with ``sleep`` as its process: one that is still there to be killed."""
    directory.mkdir()
    bundle = peers.oci_bundle(directory)
    path = bundle / "config.json"
    document = json.loads(path.read_text())
    document["process"]["args"] = ["/bin/sleep", "1000"]
    path.write_text(json.dumps(document))
    return bundle


def _commands(binary: str, root: Path, bundle: Path, name: str) -> dict[str, float]:
    """Each command of one container's life, timed on its own: create (its process waits),
    start, state, kill, and delete once it is stopped."""
    def step(*args: str) -> float:
        begin = time.perf_counter()
        subprocess.run([binary, "--root", str(root), *args], check=True,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        return time.perf_counter() - begin

    times = {"create": step("create", "--bundle", str(bundle), name),
             "start": step("start", name),
             "state": step("state", name),
             "kill": step("kill", name, "KILL")}
    while b'"stopped"' not in subprocess.run([binary, "--root", str(root), "state", name],
                                             capture_output=True).stdout:
        time.sleep(0.001)
    times["delete"] = step("delete", name)
    return times


def measure(prefix: str, runs: int) -> Section:
    section = Section("ctr-runtime, an OCI runtime, against crun and runc")
    workdir = Path(tempfile.mkdtemp(prefix=f"ctr-bench-{prefix}-oci-"))
    try:
        bundle = peers.oci_bundle(workdir)
        sleeper = _sleeper(workdir / "sleeper")
        runs_of = peers.peers(bundle, prefix)
        contenders: dict[str, Callable[[], float]] = {
            f"podman run --rm ({name})": _timer(peers.podman(workdir, runtime, prefix))
            for name, runtime in (("crun", "crun"), *RUNTIMES)}
        contenders["crun run"] = _timer(runs_of["crun run"])
        contenders["runc run"] = _timer(runs_of["runc run"])
        contenders["ctr-runtime run"] = _timer(_runtime_run(workdir / "ctr", bundle, prefix))
        samples: dict[str, list[float]] = {name: [] for name in contenders}
        steps: dict[str, dict[str, list[float]]] = {
            tool: {c: [] for c in COMMANDS} for tool, _ in RUNTIMES}
        for run in itertools.chain([-1], range(runs)):  # one round to warm caches, untimed
            for name, measure_one in contenders.items():
                elapsed = measure_one()
                if run >= 0:
                    samples[name].append(elapsed)
            for number, (tool, binary) in enumerate(RUNTIMES):
                times = _commands(binary, workdir / f"root-{number}", sleeper,
                                  f"{prefix}-{number}-{run + 1}")
                for command, elapsed in times.items():
                    if run >= 0:
                        steps[tool][command].append(elapsed)
    finally:
        peers.remove_podman(workdir, prefix)
        host.sweep(prefix, workdir, section.add)
    report(section, samples, steps, runs)
    return section


def _timer(make: peers.Command) -> Callable[[], float]:
    return lambda: timed(make())


def report(section: Section, samples: dict[str, list[float]],
           steps: dict[str, dict[str, list[float]]], runs: int) -> None:
    medians = {name: median(values) for name, values in samples.items()}
    crun = medians["podman run --rm (crun)"]
    rows = [[name, ms(medians[name]), ms(p95(values)), f"{medians[name] / crun:.2f}"]
            for name, values in samples.items()]
    ours = medians["podman run --rm (ctr-runtime)"]
    per_command = [[command, *(ms(median(steps[tool][command])) for tool, _ in RUNTIMES),
                    *(f"{median(steps[tool][command]) / median(steps['runc'][command]):.2f}"
                      for tool, _ in RUNTIMES[1:])]
                   for command in COMMANDS]
    section.add(
        f"{runs} runs each, interleaved; milliseconds. `x podman+crun`: the median over podman "
        "on crun's.",
        table(["runtime", "median", "p95", "x podman+crun"], rows),
        table(["target (issue 14)", "result", "verdict"], [
            ["podman run --rm (ctr-runtime) <= 1.2 x podman run --rm (crun)",
             f"{ours / crun:.2f} x", verdict(ours, 1.2 * crun)]]),
        "Each command an engine calls, one container's life (its process `sleep`), medians:",
        table(["command", *(tool for tool, _ in RUNTIMES),
               *(f"{tool} x runc" for tool, _ in RUNTIMES[1:])], per_command))
    section.data = {"runs": runs, "samples_s": samples, "commands_s": steps}
