"""A real systemd for tests: the host's systemd booted as PID 1 in new namespaces.

systemd is installed on the CI machine but is not PID 1 there. It boots as PID 1 of a new pid
namespace (also new mount, uts, ipc, net and cgroup namespaces) with ``container=`` set, after a
pivot_root into an overlay of ``/`` whose writable layer is a tmpfs, with fresh /proc, /sys,
/run and /tmp and cgroup file systems mounted anew inside the new cgroup namespace, in the host's
layout (v1 controllers, ``name=systemd``, a cgroup2 at ``unified`` on a hybrid host; one cgroup2
on a pure v2 host). A bind mount of the host's /sys would make that systemd manage the host's
root cgroups. The whole instance lives in one cgroup per hierarchy, ``systemd-harness-ID``, so
teardown finds every process and directory it made: SIGKILL to its PID 1 ends the pid namespace,
the mounts go with the mount namespace, the cgroups are removed bottom-up.

Commands run inside through the project's own ``spawn_in`` (as nsenter would), in PID 1's
namespaces and cgroup (``init.scope``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from supervisor.runtime import exec as container_exec
from supervisor.runtime import process, security, syscalls

CGROUP_ROOT = Path("/sys/fs/cgroup")
SYSTEMD = "/lib/systemd/systemd"
_REPO = Path(__file__).resolve().parent.parent  # the checkout under test
WRITABLE_LAYERS = "/var/lib/ctr/containers"
# Units a throwaway machine must not run: services of the host, timers, terminals, and those
# that would change kernel-wide settings shared with the host (sysctl, modules, binfmt_misc).
MASKED = (
    "systemd-sysctl.service", "systemd-modules-load.service", "systemd-binfmt.service",
    "proc-sys-fs-binfmt_misc.automount", "proc-sys-fs-binfmt_misc.mount",
    "sys-kernel-debug.mount", "sys-kernel-tracing.mount", "sys-fs-fuse-connections.mount",
    "systemd-remount-fs.service", "systemd-hwdb-update.service", "systemd-udevd.service",
    "postgresql.service", "prometheus.service", "prometheus-node-exporter.service",
    "getty@tty1.service", "console-getty.service", "getty.target", "timers.target",
    "apt-daily.timer", "apt-daily-upgrade.timer", "dpkg-db-backup.timer", "e2scrub_all.timer",
    "e2scrub_reap.service", "fstrim.timer", "man-db.timer", "systemd-tmpfiles-clean.timer",
    "systemd-timesyncd.service", "systemd-pstore.service", "remote-fs.target",
    "ssh.service", "cron.service", "rsyslog.service", "networking.service",
    "systemd-networkd.service", "systemd-resolved.service", "systemd-logind.service",
    "systemd-update-utmp.service", "systemd-update-utmp-runlevel.service",
    "systemd-journal-flush.service", "systemd-random-seed.service",
)
_NAMESPACES = (syscalls.CLONE_NEWNS | syscalls.CLONE_NEWUTS | syscalls.CLONE_NEWIPC
               | syscalls.CLONE_NEWNET | syscalls.CLONE_NEWCGROUP)
_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class SystemdError(RuntimeError):
    """The booted systemd did not come up, or a command inside it failed."""


def _cgroup_mounts() -> list[tuple[str, str, str]]:
    """(mountpoint under /sys/fs/cgroup, fstype, options) of the host's cgroup mounts."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields, _, tail = line.partition(" - ")
        fstype, _source, options = tail.split()[:3]
        mountpoint = fields.split()[4]
        if fstype in ("cgroup", "cgroup2") and mountpoint.startswith(str(CGROUP_ROOT)):
            kept = [o for o in options.split(",") if o not in ("rw", "ro")]
            found.append((mountpoint, fstype, ",".join(kept)))
    return found


class BootedSystemd:
    """One booted systemd; ``run`` a command inside it, ``close`` removes every trace."""

    def __init__(self, work: Path, hostname: str = "ctr-test") -> None:
        self.work = work
        self.hostname = hostname
        self.cgroup_name = f"systemd-harness-{os.getpid()}-{int(time.monotonic() * 1000)}"
        self.cgroup_mounts = _cgroup_mounts()
        self.console = work / "console.log"
        self.pid = 0  # systemd, as the host sees it
        self._intermediate = 0

    # -- boot ---------------------------------------------------------------------------------

    def cgroup_dirs(self) -> list[Path]:
        """This instance's cgroup in every host hierarchy (its root inside)."""
        return list(dict.fromkeys(Path(m) / self.cgroup_name for m, _, _ in self.cgroup_mounts))

    def boot(self, timeout: float = 30.0) -> None:
        for directory in self.cgroup_dirs():
            directory.mkdir()
            if (directory / "cpuset.cpus").exists():  # v1 cpuset: a new cgroup starts empty
                for key in ("cpuset.cpus", "cpuset.mems"):
                    (directory / key).write_text((directory.parent / key).read_text())
        pid_r, pid_w = os.pipe2(os.O_CLOEXEC)
        self._intermediate = os.fork()
        if self._intermediate == 0:
            os.close(pid_r)
            self._child(pid_w)
        os.close(pid_w)
        with os.fdopen(pid_r) as report:
            text = report.read()
        pid, _, error = text.partition("\n")
        if not pid.isdigit() or error:
            os.waitpid(self._intermediate, 0)
            self._intermediate = 0
            raise SystemdError(f"booting systemd failed: {error or pid}")
        self.pid = int(pid)
        self.wait_running(timeout)

    def _child(self, pid_w: int) -> None:
        """Intermediate: join the cgroups, unshare, fork the future PID 1, wait for it."""
        try:
            os.setsid()
            syscalls.prctl(syscalls.PR_SET_PDEATHSIG, signal.SIGKILL)
            for directory in self.cgroup_dirs():
                (directory / "cgroup.procs").write_text("0")
            syscalls.unshare(_NAMESPACES | syscalls.CLONE_NEWPID)
            pid = os.fork()
            if pid == 0:
                self._init(pid_w)
            os.write(pid_w, f"{pid}\n".encode())
            os.close(pid_w)
            _, status = os.waitpid(pid, 0)
            os._exit(process.exit_code(status))
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.write(pid_w, f"{type(exc).__name__}: {exc}".encode())
            os._exit(127)

    def _init(self, pid_w: int) -> None:
        """The future PID 1: build its root, then exec systemd."""
        try:
            syscalls.prctl(syscalls.PR_SET_PDEATHSIG, signal.SIGKILL)
            log = os.open(str(self.console), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            null = os.open("/dev/null", os.O_RDONLY)
            self._assemble_root()
            socket.sethostname(self.hostname)
            for target, fd in enumerate((null, log, log)):
                os.dup2(fd, target)
            os.execve(SYSTEMD, [SYSTEMD, "--log-target=console", "--show-status=no"],
                      {"container": "ctr-test", "PATH": _PATH, "LANG": "C.UTF-8"})
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.write(pid_w, f"{type(exc).__name__}: {exc}".encode())
            os._exit(127)

    def _assemble_root(self) -> None:
        syscalls.mount(None, "/", None, syscalls.MS_REC | syscalls.MS_PRIVATE)
        rw, root = self.work / "rw", self.work / "root"
        syscalls.mount("tmpfs", str(rw), "tmpfs", 0, "mode=755")
        (rw / "upper").mkdir()
        (rw / "work").mkdir()
        syscalls.mount("overlay", str(root), "overlay", 0,
                       f"lowerdir=/,upperdir={rw}/upper,workdir={rw}/work")
        for unit in MASKED:
            mask = root / "etc/systemd/system" / unit
            mask.unlink(missing_ok=True)
            mask.symlink_to("/dev/null")
        (root / "etc/hostname").write_text(self.hostname + "\n")
        syscalls.mount("proc", str(root / "proc"), "proc",
                       syscalls.MS_NOSUID | syscalls.MS_NODEV | syscalls.MS_NOEXEC)
        syscalls.mount("sysfs", str(root / "sys"), "sysfs",
                       syscalls.MS_NOSUID | syscalls.MS_NODEV | syscalls.MS_NOEXEC)
        self._mount_cgroups(root)
        syscalls.mount("/dev", str(root / "dev"), None, syscalls.MS_BIND | syscalls.MS_REC)
        # overlayfs cannot take its upper layer on an overlay: the containers' writable layers
        # get a tmpfs of their own.
        (root / WRITABLE_LAYERS.lstrip("/")).mkdir(parents=True, exist_ok=True)
        for path, mode in (("run", "755"), ("tmp", "1777"), (WRITABLE_LAYERS, "700")):
            syscalls.mount("tmpfs", str(root / path.lstrip("/")), "tmpfs",
                           syscalls.MS_NOSUID | syscalls.MS_NODEV, f"mode={mode}")
        # The checkout under test may live on a file system the overlay of / does not show, or
        # under /tmp, which is fresh inside: bind it at the same path.
        repo = root / str(_REPO).lstrip("/")
        repo.mkdir(parents=True, exist_ok=True)
        syscalls.mount(str(_REPO), str(repo), None, syscalls.MS_BIND | syscalls.MS_REC)
        os.chdir(root)
        syscalls.pivot_root(".", ".")
        syscalls.umount2(".", syscalls.MNT_DETACH)
        os.chdir("/")

    def _mount_cgroups(self, root: Path) -> None:
        """Fresh instances, made inside the new cgroup namespace: rooted at our cgroup."""
        base = root / CGROUP_ROOT.relative_to("/")
        flags = syscalls.MS_NOSUID | syscalls.MS_NODEV | syscalls.MS_NOEXEC
        if not any(m == str(CGROUP_ROOT) for m, _, _ in self.cgroup_mounts):
            syscalls.mount("tmpfs", str(base), "tmpfs", flags, "mode=755")
        for mountpoint, fstype, options in self.cgroup_mounts:
            target = root / mountpoint.lstrip("/")
            target.mkdir(exist_ok=True)
            syscalls.mount("cgroup", str(target), fstype, flags, options or None)

    # -- use ----------------------------------------------------------------------------------

    def wait_running(self, timeout: float) -> None:
        """Until ``systemctl is-system-running`` says running or degraded (boot finished)."""
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            if not process.same_process(self.pid, process.start_time(self.pid)):
                break
            with contextlib.suppress(container_exec.NotRunningError, process.SpawnError):
                state = self.run(["systemctl", "is-system-running"], check=False).stdout.strip()
                if state in ("running", "degraded"):
                    return
            time.sleep(0.1)
        console = self.console.read_text(errors="replace")[-3000:] if self.console.exists() else ""
        raise SystemdError(f"systemd not up after {timeout}s (state {state!r}); console:\n"
                           f"{console}")

    def run(self, argv: Sequence[str], *, check: bool = True, timeout: float = 60.0,
            environment: Mapping[str, str] | None = None,
            stdin: bytes = b"") -> subprocess.CompletedProcess[str]:
        """Run argv inside (as root, in init.scope); its output, like subprocess.run."""
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
                tempfile.TemporaryFile() as inp:
            inp.write(stdin)
            inp.seek(0)
            env = {"PATH": _PATH, "SYSTEMD_PAGER": "", "SYSTEMD_COLORS": "0", "LANG": "C.UTF-8"}
            env.update(environment or {})
            pid = self._spawn(argv, env, (inp.fileno(), out.fileno(), err.fileno()))
            code = _wait(pid, timeout, argv)
            out.seek(0)
            err.seek(0)
            result = subprocess.CompletedProcess(list(argv), code,
                                                 out.read().decode(errors="replace"),
                                                 err.read().decode(errors="replace"))
        if check and code != 0:
            raise SystemdError(f"{' '.join(argv)} exited {code}:\n{result.stdout}{result.stderr}")
        return result

    def _spawn(self, argv: Sequence[str], env: Mapping[str, str],
               stdio: tuple[int, int, int]) -> int:
        """spawn_in into PID 1's cgroups; systemd moves PID 1 between v1 cgroups as it realizes
        other units, so a cgroup read a moment ago may be gone: read again."""
        for _ in range(20):
            try:
                return container_exec.spawn_in(self.pid, argv, environment=env,
                                               confinement=security.PRIVILEGED, stdio=stdio)
            except process.SpawnError as exc:
                if "cgroup.procs" not in str(exc):
                    raise
                time.sleep(0.05)
        raise SystemdError(f"cannot enter the cgroups of systemd's PID {self.pid}")

    def path(self, inside: str) -> Path:
        """A path inside, as the host sees it (through PID 1's root)."""
        return Path(f"/proc/{self.pid}/root") / inside.lstrip("/")

    # -- teardown -----------------------------------------------------------------------------

    def close(self) -> None:
        """SIGKILL to PID 1 ends every process of the pid namespace; then remove the cgroups."""
        if self.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        if self._intermediate:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self._intermediate, 0)
        self._remove_cgroups()

    def _remove_cgroups(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        for top in self.cgroup_dirs():
            if not top.exists():
                continue
            below = sorted((p for p in top.rglob("*") if p.is_dir()),
                           key=lambda p: len(p.parts), reverse=True)
            for directory in [*below, top]:
                _rmdir(directory, deadline)


def _rmdir(directory: Path, deadline: float) -> None:
    """rmdir a cgroup, killing what is still in it (a process may take a moment to exit)."""
    while True:
        try:
            directory.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            with contextlib.suppress(OSError):
                for pid in (directory / "cgroup.procs").read_text().split():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(pid), signal.SIGKILL)
            time.sleep(0.02)


def _wait(pid: int, timeout: float, argv: Sequence[str]) -> int:
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return process.exit_code(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise SystemdError(f"{' '.join(argv)} did not finish within {timeout}s")
        time.sleep(0.01)


@contextlib.contextmanager
def booted_systemd(timeout: float = 30.0) -> Iterator[BootedSystemd]:
    """A booted systemd for the duration of the block, torn down even when it fails."""
    work = Path(tempfile.mkdtemp(prefix="ctr-systemd-"))
    (work / "rw").mkdir()
    (work / "root").mkdir()
    machine = BootedSystemd(work)
    try:
        machine.boot(timeout)
        yield machine
    finally:
        try:
            machine.close()
        finally:
            shutil.rmtree(work, ignore_errors=True)
