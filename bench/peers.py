"""How each runtime measured beside ctr starts /bin/true in the busybox image, as commands.

All of them get the same image directory, read-only, and as close to the same set-up as each
offers: new pid, network, ipc, uts, mount and cgroup namespaces, and (where the runtime makes a
cgroup) the same limits as ctr's runs: 64 MiB memory, half a CPU, 64 PIDs. Two host quirks need
a private mount namespace per run (a benchmark-only workaround, made by ``unshare -m sh -c``):
crun refuses this hybrid host's controller-less cgroup2 unless a tmpfs covers
/sys/fs/cgroup/unified, and systemd-nspawn, with systemd not PID 1, needs a tmpfs on
/run/systemd/nspawn.

``podman run --rm`` runs the same directory as its root (``--rootfs DIR:O``: an overlay over it,
so the /etc/hosts and resolv.conf podman writes do not land in the image), on crun and on runc,
with no network and no image store to consult; its storage, state and temporary files live in
the benchmark's directory (``--root``, ``--runroot``, ``--tmpdir``), so the host's podman is
untouched, and its cgroups (the cgroupfs manager: systemd is not PID 1 here) under a parent of
this run's, removed with it. It gets the rlimits this sandbox can set (DESIGN.md).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import shlex
import subprocess
from collections.abc import Callable
from pathlib import Path

from bench.common import CTRCTL, CTRCTL_FRONT, IMAGE
from bench.host import CGROUP_ROOT

LIMITS = {"memory": {"limit": 64 << 20}, "cpu": {"quota": 50000, "period": 100000},
          "pids": {"limit": 64}}
CTRCTL_LIMITS = ["--memory-max", "64M", "--cpu-quota", "50%", "--pids-max", "64"]
PODMAN_LIMITS = ["--memory", "64m", "--cpus", "0.5", "--pids-limit", "64",
                 "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]
PODMAN_RUNTIMES = ("crun", "runc")
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


_HIDE_UNIFIED = "mount -t tmpfs -o size=16m tmpfs /sys/fs/cgroup/unified"


def _private_mounts(script: str) -> list[str]:
    return ["unshare", "-m", "sh", "-c", script]


def podman_parent(tag: str) -> str:
    """The cgroup parent of this run's podman containers (its conmon goes below it too)."""
    return f"{tag}-podman"


def podman(workdir: Path, runtime: str, tag: str) -> Command:
    """``podman run --rm`` of /bin/true on ``runtime`` (see the module's docstring)."""
    counter = itertools.count()
    home = workdir / "podman"
    base = ["podman", "--root", str(home / "root"), "--runroot", str(home / "run"),
            "--tmpdir", str(home / "tmp"), "--runtime", runtime, "--cgroup-manager", "cgroupfs",
            "--events-backend", "none", "--storage-driver", "vfs", "run", "--rm",
            "--network", "none", "--log-driver", "none", "--cgroup-parent",
            f"/{podman_parent(tag)}", *PODMAN_LIMITS, "--rootfs"]  # the "image" is a root

    def command() -> list[str]:
        argv = [*base, "--name", f"{tag}-{Path(runtime).name}-{next(counter)}", f"{IMAGE}:O",
                "/bin/true"]
        if runtime != "crun":
            return argv
        return _private_mounts(f"{_HIDE_UNIFIED} && exec {shlex.join(argv)}")
    return command


def remove_podman(workdir: Path, tag: str) -> None:
    """What podman may have left: its containers (none if every run ended), then the cgroup
    parent of this run, bottom up in every hierarchy."""
    home = workdir / "podman"
    if home.exists():
        subprocess.run(["podman", "--root", str(home / "root"), "--runroot", str(home / "run"),
                        "--tmpdir", str(home / "tmp"), "--storage-driver", "vfs", "rm", "-af"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    for parent in CGROUP_ROOT.glob(f"*/{podman_parent(tag)}"):
        for directory in sorted(parent.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if directory.is_dir():
                with contextlib.suppress(OSError):
                    directory.rmdir()
        with contextlib.suppress(OSError):
            parent.rmdir()


def peers(bundle: Path, tag: str) -> dict[str, Command]:
    """Name -> a maker of the command for one run (each run gets a fresh container name)."""
    counter = itertools.count()
    root = shlex.quote(str(IMAGE))

    def name() -> str:
        return f"{tag}-{next(counter)}"

    crun = (f"{_HIDE_UNIFIED} && exec crun run --bundle {shlex.quote(str(bundle))} ")
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
    """``ctrctl run --rm`` started by ctrctl itself (its own pool and bridge say so), with this
    run's private directories."""
    counter = itertools.count()
    return lambda: [CTRCTL, "--state-dir", str(state_dir), "--data-dir", str(data_dir), "run",
                    "--rm", "--name", f"{tag}{network[0]}{next(counter)}",
                    "--rootfs", str(IMAGE), "--network", network, "--pool", pool,
                    "--bridge", bridge, *CTRCTL_LIMITS, *extra, "--", "/bin/true"]


def ctrctl_daemon_run(socket: Path, tag: str, network: str, binary: str = CTRCTL_FRONT
                      ) -> Command:
    """``ctrctl run --rm`` handed to the ctrd of ``socket`` (``--daemon``: fail without it), by
    the installed command (its front end) or, given ``CTRCTL``, by the Python one alone."""
    counter = itertools.count()
    return lambda: [binary, "--socket", str(socket), "run", "--daemon", "--rm", "--name",
                    f"{tag}{network[0]}{next(counter)}", "--rootfs", str(IMAGE), "--network",
                    network, *CTRCTL_LIMITS, "--", "/bin/true"]
