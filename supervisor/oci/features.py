"""``ctr-runtime features``: what this runtime implements, in the runtime spec's features.md
structure (as ``runc features`` prints it), so an engine can check before it asks."""

from __future__ import annotations

from typing import Any

from supervisor.model import capabilities, mounts
from supervisor.model.seccomp.arches import ARCHITECTURES
from supervisor.model.seccomp.profile import ACTIONS, FLAGS, OPERATORS
from supervisor.oci.config import VERSION

HOOKS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart",
         "poststop")
NAMESPACES = ("cgroup", "ipc", "mount", "network", "pid", "user", "uts")


def features(version: str) -> dict[str, Any]:
    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": VERSION,
        "hooks": list(HOOKS),
        "mountOptions": sorted(mounts.KNOWN),
        "linux": {
            "namespaces": list(NAMESPACES),
            "capabilities": list(capabilities.CAPABILITIES),
            "cgroup": {"v1": True, "v2": True, "systemd": True, "systemdUser": False,
                       "rdma": False},
            "seccomp": {
                "enabled": True,
                "actions": sorted(ACTIONS),
                "operators": sorted(OPERATORS),
                "archs": sorted(ARCHITECTURES),
                "knownFlags": sorted(FLAGS),
                "supportedFlags": sorted(FLAGS),
            },
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
            "intelRdt": {"enabled": False},
            "mountExtensions": {"idmap": {"enabled": True}},
        },
        "annotations": {"org.ctr.runtime.version": version},
    }
