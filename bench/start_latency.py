"""Start latency of /bin/true in the busybox image: ctrctl run against crun run and runc run.

All runtimes are measured in the same run, interleaved, on the same image directory; the table
gives medians, p95 and the ratio of each median to runc's. crun refuses this host's hybrid
cgroup layout, so it runs in a private mount namespace with a tmpfs over /sys/fs/cgroup/unified
(a benchmark-only workaround; ctr itself needs none).

Usage: python bench/start_latency.py [--runs N] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def oci_bundle(rootfs: Path, workdir: Path) -> Path:
    """An OCI bundle from ``runc spec`` running /bin/true on a read-only copy-free root."""
    bundle = workdir / "bundle"
    bundle.mkdir()
    subprocess.run(["runc", "spec", "--bundle", str(bundle)], check=True)
    config_path = bundle / "config.json"
    config = json.loads(config_path.read_text())
    config["process"]["args"] = ["/bin/true"]
    config["process"]["terminal"] = False
    config["root"] = {"path": str(rootfs), "readonly": True}
    config_path.write_text(json.dumps(config))
    return bundle


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--data-dir", type=Path,
                        default=Path(os.environ.get("CTR_DATA_DIR", "/var/lib/ctr")))
    args = parser.parse_args()
    rootfs = args.data_dir / "images" / "busybox"
    missing = [tool for tool in ("runc", "crun", "unshare") if not shutil.which(tool)]
    if missing or not rootfs.is_dir():
        print(f"needs {', '.join(missing) or rootfs}: run `make bench`", file=sys.stderr)
        return 2
    ctrctl = [sys.executable, "-m", "supervisor.cli.main", "--data-dir", str(args.data_dir),
              "run", "--rm"]
    with tempfile.TemporaryDirectory(prefix="ctr-bench-") as tmp:
        bundle = oci_bundle(rootfs, Path(tmp))
        counter = iter(range(10**9))
        crun = ("mount -t tmpfs -o size=16m tmpfs /sys/fs/cgroup/unified && "
                f"exec crun run --bundle {bundle} ")
        contenders: dict[str, Callable[[], list[str]]] = {
            "runc run": lambda: ["runc", "run", "--bundle", str(bundle), f"b{next(counter)}"],
            "crun run": lambda: ["unshare", "-m", "sh", "-c", crun + f"b{next(counter)}"],
            "ctrctl run (veth)": lambda: [*ctrctl, "--", "/bin/true"],
            "ctrctl run --network none": lambda: [*ctrctl, "--network", "none", "--",
                                                  "/bin/true"],
        }
        samples: dict[str, list[float]] = {name: [] for name in contenders}
        for make in contenders.values():  # warm caches once, untimed
            timed(make())
        for _ in range(args.runs):
            for name, make in contenders.items():
                samples[name].append(timed(make()))
    baseline = statistics.median(samples["runc run"])
    print(f"start latency of /bin/true, {args.runs} runs each, interleaved")
    print(f"{'runtime':<28}{'median ms':>10}{'p95 ms':>10}{'x runc':>8}")
    for name, values in samples.items():
        median = statistics.median(values)
        p95 = statistics.quantiles(values, n=20)[-1]
        print(f"{name:<28}{median * 1000:>10.1f}{p95 * 1000:>10.1f}{median / baseline:>8.2f}")
    print("target (issue 6): ctrctl run <= 1.0 x runc run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
