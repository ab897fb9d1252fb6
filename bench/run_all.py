"""``make bench``: every part of issues 6, 13 and 17 in one run, tables on stdout, results in
bench/results/.

Usage (as root, from the repository): ``.venv/bin/python -m bench.run_all [--quick]
[--parts start,density,restart,overhead,versus,images,oci,ports,logs,kernel] [--runs N]
[--sizes 100,500] ...``

Writes ``OUT/report.md`` (the tables printed), ``OUT/results.json`` (every sample) and
``OUT/start-latency-vs-n.png``. Every part removes what it made, also when it fails; a final check
lists anything of this run still on the host.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from ipaddress import IPv4Network
from pathlib import Path

from bench import (
    density,
    host,
    images,
    kernel,
    logs,
    oci,
    overhead,
    plot,
    ports,
    restart,
    start,
    versus,
    versus_plot,
)
from bench.common import IMAGE, REPO, Section, run_id

TOOLS = ("runc", "crun", "systemd-nspawn", "unshare", "chroot", "sysbench", "iperf3",
         "docker-registry", "skopeo", "podman", "strace")
POOLS = IPv4Network("10.231.0.0/16")  # split into /20s, one per ctrd or ctrctl network


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench.run_all", description=__doc__.splitlines()[0])
    parser.add_argument("--parts",
                        default="start,density,restart,overhead,versus,images,oci,ports,logs,"
                                "kernel")
    parser.add_argument("--runs", type=int, default=40, help="start latency runs per runtime")
    parser.add_argument("--sizes", default="100,500", help="density: N values")
    parser.add_argument("--restarts", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5, help="overhead: alternating rounds")
    parser.add_argument("--seconds", type=int, default=5, help="overhead, versus: seconds per run")
    parser.add_argument("--versus-rounds", type=int, default=5, help="versus: rotated rounds")
    parser.add_argument("--versus-n", type=int, default=5, help="versus: instances started")
    parser.add_argument("--pull-rounds", type=int, default=5, help="images: pulls of each")
    parser.add_argument("--image-starts", type=int, default=40, help="images: starts of each")
    parser.add_argument("--oci-runs", type=int, default=30, help="oci: runs of each")
    parser.add_argument("--kernel-runs", type=int, default=kernel.RUNS,
                        help="kernel: runs of each runtime at each count")
    parser.add_argument("--log-lines", type=int, default=1_000_000, help="logs: lines a flood")
    parser.add_argument("--quick", action="store_true", help="small numbers, to try it out")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.sizes, args.restarts, args.rounds, args.seconds = 5, "20,50", 5, 1, 2
        args.versus_rounds, args.versus_n = 1, 2
        args.pull_rounds, args.image_starts = 1, 5
        args.oci_runs = args.kernel_runs = 3
        args.log_lines = 100_000
    args.parts = args.parts.split(",")
    args.sizes = [int(n) for n in args.sizes.split(",")]
    return args


def preflight() -> list[str]:
    problems = [f"{tool} not found" for tool in TOOLS if not shutil.which(tool)]
    if os.geteuid() != 0:
        problems.append("needs root")
    if not IMAGE.is_dir():
        problems.append(f"no image at {IMAGE} (make image)")
    return problems


def machine() -> str:
    def version(argv: list[str]) -> str:
        out = subprocess.run(argv, capture_output=True, text=True).stdout
        return out.splitlines()[0] if out else "?"

    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; Linux "
            f"{platform.release()}, {os.cpu_count()} CPUs, load average {load}; Python "
            f"{platform.python_version()}; {version(['runc', '--version'])}; "
            f"{version(['crun', '--version'])}; {version(['systemd-nspawn', '--version'])}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if problems := preflight():
        print("bench: " + "; ".join(problems) + " (run `make bench`)", file=sys.stderr)
        return 2
    plot.ensure_matplotlib()
    # Measure ctr as installed, byte-compiled: a source tree run with PYTHONDONTWRITEBYTECODE
    # (as on these machines) would compile every module at each ctrctl start (~20 ms).
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "supervisor")],
                   check=True)
    prefix = run_id()
    pools = [str(net) for net in POOLS.subnets(new_prefix=20)]
    parts: dict[str, Callable[[], Section]] = {
        "start": lambda: start.measure(prefix, (pools[0], pools[1], pools[11]), args.runs),
        "density": lambda: density.measure(prefix, pools[2], args.sizes),
        "restart": lambda: restart.measure(prefix, pools[3], args.restarts),
        "overhead": lambda: overhead.measure(prefix, pools[4], args.rounds, args.seconds),
        "versus": lambda: versus.measure(prefix, (pools[5], pools[6], pools[7]),
                                         args.versus_rounds, args.seconds, args.versus_n),
        "images": lambda: images.measure(prefix, pools[8], args.pull_rounds, args.image_starts),
        "oci": lambda: oci.measure(prefix, args.oci_runs),
        "ports": lambda: ports.measure(prefix, pools[9], args.rounds, args.seconds),
        "logs": lambda: logs.measure(prefix, pools[10], args.log_lines),
        "kernel": lambda: kernel.measure(prefix, pools[12], runs=args.kernel_runs),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    header = f"# ctr benchmarks\n\nRun {prefix}: {machine()}"
    print(header, flush=True)
    sections: list[Section] = []
    failed = False
    for name in args.parts:
        began = time.monotonic()
        try:
            section = parts[name]()
        except Exception:
            failed = True
            section = Section(f"{name}: failed", ["```\n" + traceback.format_exc() + "```"])
        section.add(f"_{name}: {time.monotonic() - began:.0f} s_")
        sections.append(section)
        print("\n" + section.markdown(), flush=True)
    left = host.leftovers(prefix)
    footer = f"Left on the host by run {prefix}: {', '.join(left) or 'nothing'}; load average " \
             f"at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}."
    print("\n" + footer)
    (args.out / "report.md").write_text(
        "\n\n".join([header, *(s.markdown() for s in sections), footer]) + "\n")
    (args.out / "results.json").write_text(json.dumps(
        {s.title: s.data for s in sections}, indent=1))
    for section in sections:
        if "curve" in section.data:
            png = args.out / "start-latency-vs-n.png"
            plot.start_latency_plot(section.data["curve"], png)
            print(f"plot: {png}")
        if "versus" in section.data:
            png = args.out / "versus.png"
            versus_plot.plot(section.data["versus"], png)
            print(f"plot: {png}")
    return 1 if failed or left else 0


if __name__ == "__main__":
    sys.exit(main())
