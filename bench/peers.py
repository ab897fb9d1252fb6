"""How each runtime measured beside ctr starts /bin/true in the busybox image, as commands.

All of them get the same image directory, read-only, and as close to the same set-up as each
offers: new pid, network, ipc, uts, mount and cgroup namespaces, and (where the runtime makes a
cgroup) the same limits as ctr's runs: 64 MiB memory, half a CPU, 64 PIDs. Two host quirks need
a private mount namespace per run (a benchmark-only workaround, made by ``unshare -m sh -c``):
crun refuses this hybrid host's controller-less cgroup2 unless a tmpfs covers
/sys/fs/cgroup/unified, and systemd-nspawn, with systemd not PID 1, needs a tmpfs on
/run/systemd/nspawn.
"""

from __future__ import annotations

import itertools
import json
import shlex
import subprocess
from collections.abc import Callable
from pathlib import Path

from bench.common import CTRCTL, IMAGE

LIMITS = {"memory": {"limit": 64 << 20}, "cpu": {"quota": 50000, "period": 100000},
          "pids": {"limit": 64}}
CTRCTL_LIMITS = ["--memory-max", "64M", "--cpu-quota", "50%", "--pids-max", "64"]
NSPAWN_DIR = Path("/run/systemd/nspawn")

Command = Callable[[], list[str]]


def oci_bundle(workdir: Path, rootfs: Path = IMAGE) -> Path:
    """An OCI bundle from ``runc spec``: /bin/true on the read-only image, cgroup namespace and
    limits added to runc's defaults."""
    bundle = workdir / "bundle"
    bundle.mkdir()
    subprocess.run(["runc", "spec", "--bundle", str(bundle)], check=True)
    config_path = bundle / "config.json"
    config = json.loads(config_path.read_text())
    config["process"]["args"] = ["/bin/true"]
    config["process"]["terminal"] = False
    config["root"] = {"path": str(rootfs), "readonly": True}
    config["linux"]["namespaces"].append({"type": "cgroup"})
    config["linux"]["resources"].update(LIMITS)
    config_path.write_text(json.dumps(config))
    return bundle


def _private_mounts(script: str) -> list[str]:
    return ["unshare", "-m", "sh", "-c", script]


def peers(bundle: Path, tag: str) -> dict[str, Command]:
    """Name -> a maker of the command for one run (each run gets a fresh container name)."""
    counter = itertools.count()
    root = shlex.quote(str(IMAGE))

    def name() -> str:
        return f"{tag}-{next(counter)}"

    crun = ("mount -t tmpfs -o size=16m tmpfs /sys/fs/cgroup/unified && "
            f"exec crun run --bundle {shlex.quote(str(bundle))} ")
    nspawn = (f"mount -t tmpfs -o size=1m tmpfs {NSPAWN_DIR} && exec systemd-nspawn -q "
              f"--keep-unit --register=no --read-only --private-network --resolv-conf=off "
              f"--timezone=off --link-journal=no -D {root} -M ")
    return {
        "runc run": lambda: ["runc", "run", "--bundle", str(bundle), name()],
        "crun run": lambda: _private_mounts(crun + name()),
        "systemd-nspawn": lambda: _private_mounts(nspawn + name() + " /bin/true"),
        "unshare + chroot": lambda: ["unshare", "-fmuipnC", f"--mount-proc={IMAGE}/proc",
                                     "chroot", str(IMAGE), "/bin/true"],
    }


def ctrctl_run(state_dir: Path, data_dir: Path, pool: str, bridge: str, tag: str,
               network: str, *extra: str) -> Command:
    """``ctrctl run --rm`` with this run's private directories, pool and bridge."""
    counter = itertools.count()
    return lambda: [CTRCTL, "--state-dir", str(state_dir), "--data-dir", str(data_dir), "run",
                    "--rm", "--name", f"{tag}{network[0]}{next(counter)}",
                    "--rootfs", str(IMAGE), "--network", network, "--pool", pool,
                    "--bridge", bridge, *CTRCTL_LIMITS, *extra, "--", "/bin/true"]
