"""Defaults defined once: where things live, a container's PATH, the veth network, the image
file names looked for, the cgroup drivers."""

from __future__ import annotations

from pathlib import Path

STATE_DIR = Path("/run/ctr")  # runtime state: the API socket, per-container records
API_TOKEN = "api-token"  # under the state directory: the bearer token of ctrd's TCP listener
DATA_DIR = Path("/var/lib/ctr")  # images, writable layers, logs
CONFIG_PATH = (Path("/etc/ctr"), Path("/run/ctr"), Path("/usr/lib/ctr"))  # systemd's order

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # as docker and runc

POOL = "10.88.0.0/16"  # the veth network's addresses; its first is the bridge's
BRIDGE = "ctr0"

# Looked for, in this order, under DATA_DIR/images for an image given by name.
IMAGE_SUFFIXES = (
    "", ".tar", ".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.bz2",
    ".img", ".ext4", ".squashfs", ".sqfs", ".erofs",
)

CGROUP_DRIVERS = ("auto", "systemd", "cgroupfs", "cgroupfs-v2", "cgroupfs-v1")
