"""The escape suite (issue 15): attacks tried from inside a default container, each refused, and
each shown working where the confinement that refuses it is lifted, so that no probe is one that
could never succeed.

Each attack is a static probe (tests/probes/NAME.c) that prints one line per attempt,
``WHAT: ok`` or ``WHAT: ERRNO``. One container per confinement runs them all (:class:`Suite`):
default, ``--privileged`` (every capability, nothing masked or read-only, every device, no
system-call filter) and ``--security-opt seccomp=unconfined`` (only the filter lifted: what the
capabilities and mounts refuse on their own). Processes outside are the test's own (a host
process) and a neighbouring container, by their host pids.

attack                         probe         default  lifted           refused by
-----------------------------  ------------  -------  ---------------  --------------------------
user namespace, mount in it    userns        EPERM    ok               seccomp
keyctl, add_key                keyring       EPERM    ok               seccomp
bpf (a socket filter)          bpf           EPERM    ok               seccomp; CAP_BPF (1)
perf_event_open on itself      perf          EPERM    ok               seccomp
userfaultfd (user mode)        userfaultfd   EPERM    ok               seccomp
open_by_handle_at ("shocker")  shocker       EPERM    ok               CAP_DAC_READ_SEARCH; seccomp
mount of a tmpfs               mount         EPERM    ok               CAP_SYS_ADMIN; seccomp
kernel module (empty image)    init_module   EPERM    ENOEXEC (2)      seccomp; CAP_SYS_MODULE
reboot (bad magic: a no-op)    reboot        EPERM    EINVAL           CAP_SYS_BOOT; seccomp
/proc/sys, /proc/irq, sysrq    open_write    EROFS    ok               read-only binds in /proc
/sys                           open_write    EROFS    ok               read-only sysfs
setns into its own namespaces  setns         EPERM    ok               CAP_SYS_ADMIN; seccomp
setns into a host namespace    setns         ENOENT   ENOENT           pid namespace
ptrace of a process outside    ptrace        ESRCH    ESRCH            pid namespace
another container's files      read          ENOENT   ok (3)           pid namespace
ctrd's API socket              api           ENOENT   200 (4)          mount namespace
mknod + open of a host device  test_devices  EPERM    read             device cgroup
host descriptors, PID 1/exec   test_escapes  0 1 2    -                close_range before exec
exe of a joining exec          test_escapes  none     opened           not dumpable until exec

(1) CAP_BPF or CAP_SYS_ADMIN where kernel.unprivileged_bpf_disabled is set, as on this host;
where it is 0 only the filter refuses a socket filter. (2) ENOSYS on a kernel without module
support (this VM's): the filter's EPERM is then the only refusal to see. (3) With the
neighbour's pid namespace joined on purpose. (4) With the socket mounted in.

The last three are tested elsewhere: ``test_devices.py`` (a host loop device and /dev/kmsg made
with mknod: made, not opened; read when privileged), ``test_escapes.py`` (PID 1, a ctrd
container's PID 1 and an exec'd process hold only fds 0-2, a working directory through
/proc/self/fd is refused; a watcher inside opens no joining process's /proc/PID/exe, and does
when privileged).

A privileged container keeps its pid and mount namespaces (ctr has no host pid namespace), so it
reaches no process outside and no host path either; what lifts those walls is sharing them on
purpose: joining another container's pid namespace (``[namespaces] pid = "container:OTHER"``),
mounting the API socket in. A privileged container is no security boundary all the same: it may
open the host's disks.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.conftest import Daemon, Env
from tests.e2e.test_escapes import _with_probes

CONFINEMENTS = {
    "default": (),
    "privileged": ("--privileged",),
    "unconfined": ("--security-opt", "seccomp=unconfined"),
}

# The probes that take no arguments, run one after the other.
PLAIN_PROBES = ("userns", "keyring", "bpf", "perf", "userfaultfd", "mount", "init_module",
                "reboot")

# Kernel knobs opened for writing, never written: per-UTS-namespace, the core dump handler (the
# host runs it as root: the classic escape), a global /proc/irq file, the container's own
# loopback in /sys, and the sysrq trigger where this kernel has one (CONFIG_MAGIC_SYSRQ).
KNOBS = ("/proc/sys/kernel/hostname", "/proc/sys/kernel/core_pattern",
         "/proc/irq/default_smp_affinity", "/sys/class/net/lo/mtu",
         *(("/proc/sysrq-trigger",) if Path("/proc/sysrq-trigger").exists() else ()))


def _sysctl(name: str, missing: int) -> int:
    path = Path("/proc/sys", *name.split("."))
    return int(path.read_text()) if path.exists() else missing


# What this host's kernel lets a root without capabilities do, once no filter stands between.
_USERNS = "ok" if _sysctl("kernel.unprivileged_userns_clone", 1) else "EPERM"  # Debian's knob
# perf_event_paranoid 2 still lets anyone count its own user time; 3, a patch of Debian's
# kernels, refuses everything to everyone without CAP_PERFMON.
_PERF = "ok" if _sysctl("kernel.perf_event_paranoid", 2) <= 2 else "EACCES"
_BPF = "ok" if _sysctl("kernel.unprivileged_bpf_disabled", 0) == 0 else "EPERM"
# Without module support (CONFIG_MODULES=n, as on this VM) init_module is ENOSYS for everyone.
_MODULES = Path("/proc/modules").exists()


@dataclass(frozen=True)
class Attack:
    line: str  # what the probe prints before ": "
    default: str | None  # the verdict in a default container; None: the probe never gets there
    privileged: str
    unconfined: str | None  # with only the filter lifted; None: the probe never gets there


ATTACKS = (
    Attack("userns", "EPERM", "ok", _USERNS),
    Attack("userns-mount", None, "ok", "ok" if _USERNS == "ok" else None),
    Attack("add_key", "EPERM", "ok", "ok"),
    Attack("keyctl", "EPERM", "ok", "ok"),
    Attack("bpf", "EPERM", "ok", _BPF),
    Attack("perf_event_open", "EPERM", "ok", _PERF),
    Attack("userfaultfd", "EPERM", "ok", "ok"),
    Attack("open_by_handle_at", "EPERM", "ok", "EPERM"),
    Attack("mount", "EPERM", "ok", "EPERM"),
    Attack("init_module", "EPERM", "ENOEXEC" if _MODULES else "ENOSYS",
           "EPERM" if _MODULES else "ENOSYS"),
    Attack("reboot", "EPERM", "EINVAL", "EPERM"),
    # The container's own namespaces: joining one needs CAP_SYS_ADMIN (and the filter allows
    # setns only with it); done privileged, it changes nothing.
    Attack("setns /proc/1/ns/uts", "EPERM", "ok", "EPERM"),
    Attack("setns /proc/1/ns/net", "EPERM", "ok", "EPERM"),
    *(Attack(f"open-write {knob}", "EROFS", "ok", "EROFS") for knob in KNOBS),
)


class Suite:
    """The probes run once per confinement, in containers beside a neighbouring one."""

    def __init__(self, env: Env, probes: Path, neighbour: int) -> None:
        self.env = env
        self.probes = probes
        self.host = os.getpid()  # this test process: a host process outside every container
        self.neighbour = neighbour  # PID 1 of the neighbour, which wrote its /tmp/secret
        self._runs: dict[str, subprocess.CompletedProcess[str]] = {}

    @property
    def outside_files(self) -> tuple[str, str]:
        """A file of the host's and one of the neighbour's, as /proc/PID/root names them."""
        return (f"/proc/{self.host}/root{self.probes}/read",
                f"/proc/{self.neighbour}/root/tmp/secret")

    def script(self) -> str:
        outside = (self.host, self.neighbour)
        return "\n".join((
            f"for probe in {' '.join(PLAIN_PROBES)}; do /probes/$probe; done",
            "/probes/shocker /probes",  # a directory of the host's bound in, as in the exploit
            f"/probes/open_write {' '.join(KNOBS)}",
            "/probes/setns /proc/1/ns/uts /proc/1/ns/net "
            + " ".join(f"/proc/{pid}/ns/net" for pid in outside),
            f"/probes/ptrace 1 {' '.join(map(str, outside))}",
            f"/probes/read /proc/1/root/etc/passwd {' '.join(self.outside_files)}",
        ))

    def verdict(self, confinement: str, line: str) -> str | None:
        """What the probe said for ``line`` in that container; None when it said nothing."""
        if confinement not in self._runs:
            self._runs[confinement] = self.env.run(
                "/bin/sh", "-c", self.script(),
                flags=("--network", "none", "--mount", f"{self.probes}:/probes:ro",
                       *CONFINEMENTS[confinement]))
        result = self._runs[confinement]
        assert result.returncode == 0, result.stderr
        return _verdicts(result.stdout).get(line)


def _verdicts(output: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in output.splitlines() if ": " in line)


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory, busybox_image: Path,
          probes: Path) -> Iterator[Suite]:
    root = tmp_path_factory.mktemp("escape-suite")
    env = Env(state=root / "state", data=root / "data")
    (env.data / "images").mkdir(parents=True)
    (env.data / "images" / "busybox").symlink_to(busybox_image)
    neighbour = env.start("--name", "neighbour", "--network", "none", "--stop-timeout", "0.2s",
                          "--", "/bin/sh", "-c",
                          "echo secret > /tmp/secret; echo ready; exec sleep 600")
    try:
        record = env.state / "containers" / "neighbour" / "state.json"
        suite = Suite(env, probes, json.loads(record.read_text())["pid"])
        # Both files are there, seen from the host: a refusal below is not a wrong path.
        assert all(Path(path).is_file() for path in suite.outside_files)
        yield suite
    finally:
        neighbour.send_signal(signal.SIGTERM)
        neighbour.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)


def _ids(attack: Attack) -> str:
    return attack.line


@pytest.mark.parametrize("attack", ATTACKS, ids=_ids)
def test_refused_in_a_default_container(suite: Suite, attack: Attack) -> None:
    assert suite.verdict("default", attack.line) == attack.default


@pytest.mark.parametrize("attack", ATTACKS, ids=_ids)
def test_works_in_a_privileged_container(suite: Suite, attack: Attack) -> None:
    assert suite.verdict("privileged", attack.line) == attack.privileged


@pytest.mark.parametrize("attack", ATTACKS, ids=_ids)
def test_without_the_filter_only_capabilities_and_mounts_refuse(suite: Suite,
                                                                attack: Attack) -> None:
    """Which refusals are the filter's alone: those that become "ok" here."""
    assert suite.verdict("unconfined", attack.line) == attack.unconfined


@pytest.mark.parametrize("confinement", ["default", "privileged"])
def test_no_process_outside_is_reachable(suite: Suite, confinement: str) -> None:
    """A host process and a neighbouring container are looked up by their host pids, which the
    container's pid namespace does not have: nothing to trace, no namespace to join, no root to
    read another container's files through. The same probes do reach the container's own PID 1,
    so it is the pid namespace that stands between, privileged or not."""
    outside = (suite.host, suite.neighbour)
    expected = {
        "ptrace 1": "ok",
        "read /proc/1/root/etc/passwd": "ok",
        **{f"ptrace {pid}": "ESRCH" for pid in outside},
        **{f"setns /proc/{pid}/ns/net": "ENOENT" for pid in outside},
        **{f"read {path}": "ENOENT" for path in suite.outside_files},
    }
    assert {line: suite.verdict(confinement, line) for line in expected} == expected


# -- under ctrd --------------------------------------------------------------------------------

def _verdicts_of(ctrd: Daemon, name: str) -> dict[str, str]:
    """Start ``name``, wait for its end, and read its verdicts from its log."""
    ctrd.ctl("start", name)
    ctrd.wait_for(name, lambda status: status["state"] in ("exited", "failed"))
    return _verdicts(ctrd.ctl("logs", name).stdout)


def test_another_containers_files_only_through_its_pid_namespace(ctrd: Daemon,
                                                                 probes: Path) -> None:
    """Joined to the holder's pid namespace on purpose (docker's --pid container:NAME), a
    container reads the holder's files through /proc/PID/root: the wall the test above finds
    is that namespace."""
    ctrd.define("holder", """
[container]
image = "busybox"
command = ["/bin/sh", "-c", "echo secret > /tmp/secret; exec sleep 600"]
[network]
mode = "none"
[restart]
stop_timeout = "200ms"
""")
    ctrd.define("joined", _with_probes(probes, '["/probes/read", "/proc/1/root/tmp/secret"]')
                + '[namespaces]\npid = "container:holder"\n')
    ctrd.start()
    ctrd.ctl("start", "holder")
    pid = ctrd.status("holder")["pid"]
    ctrd.wait_for("holder", lambda _: Path(f"/proc/{pid}/root/tmp/secret").exists())
    assert _verdicts_of(ctrd, "joined") == {"read /proc/1/root/tmp/secret": "ok"}


def test_the_api_socket_is_out_of_reach(ctrd: Daemon, probes: Path) -> None:
    """Neither the default socket path nor this ctrd's own exists inside a container, privileged
    or not; mounted in by an administrator (as docker.sock is), the same probe drives ctrd."""
    paths = ["/run/ctr/ctrd.sock", str(ctrd.socket)]
    command = json.dumps(["/probes/api", *paths])  # a TOML array too
    ctrd.define("plain", _with_probes(probes, command))
    ctrd.define("privileged", _with_probes(probes, command, privileged=True))
    ctrd.define("given", _with_probes(probes, '["/probes/api", "/ctr/ctrd.sock"]') + f"""
[[mounts]]
source = "{ctrd.socket.parent}"
target = "/ctr"
read_only = true
""")
    ctrd.start()
    refused = {f"api {path}": "ENOENT" for path in paths}
    assert _verdicts_of(ctrd, "plain") == refused
    assert _verdicts_of(ctrd, "privileged") == refused
    assert _verdicts_of(ctrd, "given") == {"api /ctr/ctrd.sock": "HTTP/1.1 200 OK"}
