"""Where a start through ctrd's API spends its time: py-spy samples ctrd (and, with
``--subprocesses``, the forked PID 1 up to its exec) while the benchmark starts containers.

Usage (as root): ``.venv/bin/python -m bench.profile_start [--starts 200] [--network veth]
[--subprocesses]``; needs py-spy in the venv (``.venv/bin/pip install py-spy``). Prints the
frames with the most samples, inclusive and own, and keeps the folded stacks
(bench/results/profile-start-*.txt) for a flame graph. Not part of ``make bench``.
"""

from __future__ import annotations

import argparse
import collections
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench import start
from bench.common import REPO, VENV_BIN, ms, run_id
from bench.daemon import Ctrd

POOL = "10.231.240.0/20"
FOCUS = "launch (supervisor/api/containers.py)"  # the request handler, up to the answer
# As the start benchmark's, but a sleep removed with SIGKILL: no exit races the DELETE, and no
# polling for it muddles the samples.
DEFINITION = start.API_DEFINITION.replace('["/bin/true"]', '["/bin/sleep", "1000"]') + \
    '[restart]\nstop_signal = "SIGKILL"\n'


def top_frames(folded: Path, limit: int, within: str) -> tuple[
        list[tuple[str, int]], list[tuple[str, int]], int]:
    """(inclusive, own) sample counts per frame of py-spy's raw output, and their total, for the
    stacks that pass through the frame ``within``."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in folded.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        frames = stack.split(";")
        if not any(frame.startswith(within) for frame in frames):
            continue
        frames = frames[next(i for i, f in enumerate(frames) if f.startswith(within)):]
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    return inclusive.most_common(limit), own.most_common(limit), total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.profile_start", description=__doc__)
    parser.add_argument("--starts", type=int, default=200)
    parser.add_argument("--network", choices=["veth", "none"], default="veth")
    parser.add_argument("--subprocesses", action="store_true")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args(argv)
    prefix = run_id()
    out = REPO / "bench" / "results" / f"profile-start-{args.network}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    with Ctrd(prefix, f"{prefix}br9", POOL, {"p": DEFINITION.format(mode=args.network)}) as ctrd:
        names = (f"{prefix}p{i}" for i in range(10**9))

        def launch() -> float:
            name = next(names)
            begin = time.perf_counter()
            ctrd.launch("p", name)
            elapsed = time.perf_counter() - begin
            ctrd.remove(name)
            return elapsed

        launch()  # warm
        spy = subprocess.Popen(
            [str(VENV_BIN / "py-spy"), "record", "--rate", "1000", "--nonblocking", "--format",
             "raw", "--nolineno", "--idle", "--output", str(out), "--pid", str(ctrd.pid),
             *(["--subprocesses"] if args.subprocesses else [])],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)  # py-spy attaches
        samples = [launch() for _ in range(args.starts)]
        spy.send_signal(signal.SIGINT)
        spy.wait(30)
    samples.sort()
    print(f"{args.starts} API starts ({args.network}): median {ms(samples[len(samples) // 2])} ms"
          " while sampled")
    inclusive, own, total = top_frames(out, args.top, FOCUS)
    print(f"{total / args.starts:.1f} ms of samples per start in {FOCUS} (1 sample = 1 ms)")
    for title, rows in (("inclusive", inclusive), ("own", own)):
        print(f"\n{title}, ms per start:")
        for frame, count in rows:
            print(f"{count / args.starts:6.2f}  {frame}")
    print(f"\nfolded stacks: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
