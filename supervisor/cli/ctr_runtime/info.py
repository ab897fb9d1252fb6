"""``features`` and ``spec``: what ctr-runtime implements, and a config.json to start a bundle
from (runc's default: a shell on a terminal in ``rootfs``, docker's capabilities and paths)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from supervisor.cli.ctr_runtime.log import Log
from supervisor.cli.ctr_runtime.main import VERSION
from supervisor.model import capabilities, defaults, security
from supervisor.oci.config import CONFIG
from supervisor.oci.config import VERSION as SPEC_VERSION
from supervisor.oci.features import features as implemented
from supervisor.oci.state import StateError


def features(args: argparse.Namespace, log: Log) -> int:
    print(json.dumps(implemented(VERSION), indent=4))
    return 0


_NOSUID_NOEXEC_NODEV = ["nosuid", "noexec", "nodev"]


def template(rootless: bool) -> dict[str, Any]:
    caps = list(capabilities.DEFAULT)
    mounts: list[dict[str, Any]] = [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620",
                     *([] if rootless else ["gid=5"])]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": [*_NOSUID_NOEXEC_NODEV, "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": _NOSUID_NOEXEC_NODEV},
        {"destination": "/sys", "type": "bind", "source": "/sys",
         "options": ["rbind", *_NOSUID_NOEXEC_NODEV, "ro"]} if rootless else
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": [*_NOSUID_NOEXEC_NODEV, "ro"]},
    ]
    if not rootless:
        mounts.append({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                       "options": [*_NOSUID_NOEXEC_NODEV, "relatime", "ro"]})
    namespaces = [{"type": kind} for kind in ("pid", "network", "ipc", "uts", "mount")]
    linux: dict[str, Any] = {"namespaces": namespaces,
                             "maskedPaths": list(security.MASKED_PATHS),
                             "readonlyPaths": list(security.READONLY_PATHS)}
    if rootless:
        namespaces[1] = {"type": "user"}
        linux["uidMappings"] = [{"containerID": 0, "hostID": os.getuid(), "size": 1}]
        linux["gidMappings"] = [{"containerID": 0, "hostID": os.getgid(), "size": 1}]
    else:
        linux["resources"] = {"devices": [{"allow": False, "access": "rwm"}]}
    return {
        "ociVersion": SPEC_VERSION,
        "process": {
            "terminal": True,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": [f"PATH={defaults.PATH}", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {name: caps for name in ("bounding", "effective", "permitted")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "ctr",
        "mounts": mounts,
        "linux": linux,
    }


def spec(args: argparse.Namespace, log: Log) -> int:
    path = Path(args.bundle) / CONFIG
    if path.exists():
        raise StateError(f"{path} exists: remove it first")
    path.write_text(json.dumps(template(args.rootless), indent=4) + "\n")
    return 0
