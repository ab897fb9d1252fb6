"""What ctr-runtime keeps of a container between its commands: ``ROOT/ID/state.json``, written
atomically (a temporary file renamed over it), and the container's status read from the kernel.

The status is the runtime spec's (``creating``, ``created``, ``running``, ``stopped``) and runc's
``paused``: created while PID 1 waits on the exec FIFO (``start`` removes it), stopped once PID 1
is gone or a zombie, or another process has its pid (its start time says which). Nothing else of
ctr is imported here, so ``state``, ``kill`` and ``delete`` start fast.

shim/ctr-runtime.c, the compiled front end, reads the same record and the same status for the
plain start, state, kill and delete: a field renamed here is renamed there
(tests/e2e/test_oci_frontend.py compares the two).
"""

from __future__ import annotations

import json
import os
import re
import time

# typing's import would cost every command 2-3 ms here; mypy knows this constant too
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    Root = str | os.PathLike[str]  # paths stay strings here: pathlib costs ``state`` its import

DEFAULT_ROOT = "/run/ctr-runtime"
RECORD = "state.json"
FIFO = "exec.fifo"  # PID 1 waits to open it until ``start`` does
CONFIG_COPY = "config.json"  # the bundle's config as create read it (exec reads it again)
CORE = "ctr"  # the runtime core's own state directory of the container (Container's)
# What the containers of one root share (the compiled seccomp filters): no id starts with a dot
SHARED = ".shared"
_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,1023}")


class StateError(RuntimeError):
    """An operation the container's state does not allow, or no such container; the message is
    the one runc gives, which engines match (``does not exist``, ``container not running``)."""


def container_id(text: str) -> str:
    """An id as runc takes one: letters, digits and ``_.+-``, not starting with punctuation."""
    if not _ID_RE.fullmatch(text):
        raise StateError(f"invalid container id {text!r}: use letters, digits, '_', '.', '+' "
                         "or '-', starting with a letter or digit")
    return text


def now() -> str:
    """RFC 3339 in UTC with nanoseconds, as runc writes ``created`` and logrus its ``time``
    (``time``'s functions: the datetime module would cost every command its import)."""
    ns = time.time_ns()
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(ns // 10**9))}.{ns % 10**9:09d}Z"


class Record:
    """One container's record. ``pid`` is 0 while it is being created. A plain class, not a
    dataclass: ``state`` and ``kill`` would pay for the dataclasses module's import."""

    def __init__(self, id: str, bundle: str, oci_version: str, rootfs: str, created: str,
                 owner: str = "root", pid: int = 0, pid_start: int | None = None,
                 annotations: dict[str, str] | None = None, cgroup: dict[str, Any] | None = None,
                 freezer: str = "", hooks: dict[str, list[dict[str, Any]]] | None = None) -> None:
        self.id = id
        self.bundle = bundle
        self.oci_version = oci_version
        self.rootfs = rootfs
        self.created = created
        self.owner = owner
        self.pid = pid
        self.pid_start = pid_start  # PID 1's start time (clock ticks since boot)
        self.annotations = annotations or {}
        # Where the cgroup is, for the driver to open it again: {"driver", "parent", "name",
        # "directories"}.
        self.cgroup = cgroup or {}
        self.freezer = freezer  # the file that says whether the cgroup is frozen (paused)
        self.hooks = hooks or {}  # poststart, poststop

    @classmethod
    def load(cls, root: Root, cid: str) -> Record:
        try:
            with open(os.path.join(root, cid, RECORD)) as f:
                data = json.load(f)
        except FileNotFoundError:
            raise StateError(f'container "{cid}" does not exist') from None
        except (OSError, ValueError) as exc:
            raise StateError(f"container {cid}: unreadable state record: {exc}") from None
        return cls(**data)

    def save(self, root: Root) -> None:
        path = os.path.join(root, self.id, RECORD)
        tmp = os.path.join(root, self.id, f".{RECORD}.{os.getpid()}")
        with open(tmp, "w") as f:
            json.dump(vars(self), f)
        os.replace(tmp, path)

    def directory(self, root: Root) -> str:
        return os.path.join(root, self.id)

    def status(self, root: Root) -> str:
        if self.pid == 0:
            return "creating"
        if not alive(self.pid, self.pid_start):
            return "stopped"
        if os.path.exists(os.path.join(root, self.id, FIFO)):
            return "created"
        return "paused" if frozen(self.freezer) else "running"

    def oci_state(self, root: Root) -> dict[str, Any]:
        """The state the spec defines (and what runc adds: rootfs, created, owner)."""
        status = self.status(root)
        return {
            "ociVersion": self.oci_version,
            "id": self.id,
            "pid": self.pid if status != "stopped" else 0,
            "status": status,
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
            "owner": self.owner,
            "annotations": self.annotations,
        }


def start_time(pid: int) -> int | None:
    """``pid``'s start time, None if it is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
    except OSError:
        return None
    return None if fields[0] in ("Z", "X") else int(fields[19])


def alive(pid: int, started: int | None) -> bool:
    return started is not None and start_time(pid) == started


def frozen(path: str) -> bool:
    """Whether the freezer file ``path`` (v1 freezer.state, v2 cgroup.freeze) says frozen."""
    if not path:
        return False
    try:
        with open(path) as f:
            value = f.read().strip()
    except OSError:
        return False
    return value in ("FROZEN", "FREEZING", "1")


def ids(root: Root) -> list[str]:
    """The containers under ``root``, sorted."""
    try:
        entries = sorted(os.listdir(root))
    except FileNotFoundError:
        return []
    return [entry for entry in entries if os.path.isfile(os.path.join(root, entry, RECORD))]


def write_pid_file(path: str, pid: int) -> None:
    """``--pid-file``, written atomically: an engine polling for it never reads half a pid."""
    head, name = os.path.split(path)
    tmp = os.path.join(head, f".{name}.{os.getpid()}")
    with open(tmp, "w") as f:
        f.write(str(pid))
    os.replace(tmp, path)
