"""Before and after, measured alternately: whole commands timed A B C A B C ... in one run, so
the load colleagues put on the machine meanwhile slows each alike (docs/benchmarks.md, "Start
path of ctrctl run").

Usage: ``.venv/bin/python -m bench.ab [--runs 20] NAME=COMMAND NAME=COMMAND ...``; each COMMAND is
a shell command line (``$N`` in it becomes the run's number, for names that must differ). Prints
a Markdown table of medians and 95th percentiles, each against the first command's median.
Commands must succeed; their output is discarded.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from bench.common import median, ms, p95, table


def timed_shell(command: str, run: int) -> float:
    start = time.perf_counter()
    subprocess.run(command.replace("$N", str(run)), shell=True, check=True,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.ab", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("commands", nargs="+", metavar="NAME=COMMAND")
    args = parser.parse_args(argv)
    commands = dict(text.split("=", 1) for text in args.commands)
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for command in commands.values():  # warm the caches once, untimed
        timed_shell(command, -1)
    for run in range(args.runs):
        for name, command in commands.items():
            samples[name].append(timed_shell(command, run))
    first = median(next(iter(samples.values())))
    print(table(["command", "median ms", "p95 ms", "x first"],
                [[name, ms(median(values)), ms(p95(values)), f"{median(values) / first:.2f}"]
                 for name, values in samples.items()]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
