"""ctr-init (shim/ctr-init.c) as PID 1 of a pid namespace of the test's own: what a user of
``init = true`` sees, and, where it matters, what the same command does as PID 1 without it.

Each case forks a keeper that makes a new pid and mount namespace and forks PID 1 there; PID 1
mounts that namespace's own /proc (private to the new mount namespace), waits for the test's go,
and execs the command through a descriptor opened before any chroot (as ctr's PID 1 would exec the
init). The keeper reports PID 1's host pid and, at the end, its raw wait status. PID 1 and the
keeper die with their parents, and every case kills PID 1 (its whole namespace) through a pidfd.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import shutil
import signal
import subprocess
import termios
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn, TypeVar

import pytest

from supervisor.runtime import syscalls
from tests.conftest import REPO
from tests.ignored_signals import LAUNCHER_IGNORES, ignoring

INIT = REPO / "supervisor" / "runtime" / "libexec" / "ctr-init"
BUSYBOX = "/bin/busybox"
SLEEP = (BUSYBOX, "sleep", "60")
PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
HARNESS_FAILED = 99  # the keeper or PID 1 failed before the command ran (traceback on stderr)

T = TypeVar("T")


@pytest.fixture(scope="module", autouse=True)
def built() -> None:
    if not os.access(INIT, os.X_OK):
        pytest.fail(f"{INIT} is missing: build it with `make shim`")


def sh(script: str, init: bool = True) -> list[str]:
    """``busybox sh -c SCRIPT``, under ctr-init or as PID 1 itself."""
    return [*([str(INIT)] if init else []), BUSYBOX, "sh", "-c", script]


def eventually(probe: Callable[[], T], accept: Callable[[T], bool], timeout: float = 10) -> T:
    """Poll ``probe`` until ``accept`` takes its value; fail with the last value otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if accept(value):
            return value
        assert time.monotonic() < deadline, f"never got there: {value!r}"
        time.sleep(0.02)


@dataclass(frozen=True)
class Proc:
    ppid: int
    state: str
    argv: tuple[str, ...]


class Namespace:
    """PID 1 of the test's pid namespace, seen from the host."""

    def __init__(self, pid: int, pidfd: int, report: int, buffer: bytes, out: Path,
                 err: Path) -> None:
        self.pid = pid
        self.pidfd = pidfd
        self.out = out
        self.err = err
        self._report = report
        self._buffer = buffer

    def signal(self, sig: int) -> None:
        signal.pidfd_send_signal(self.pidfd, sig)

    def wait(self, timeout: float = 10) -> int:
        """PID 1's exit code, -N if a signal N killed it; fails if it is still running after
        ``timeout`` (every command that should end here would otherwise run for a minute)."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            assert left > 0 and select.select([self._report], [], [], left)[0], \
                f"PID 1 still running after {timeout}s: {self.processes()}"
            chunk = os.read(self._report, 64)
            assert chunk, "the keeper died without a status"
            self._buffer += chunk
        code = os.waitstatus_to_exitcode(int(self._buffer.split(b"\n")[0]))
        assert code != HARNESS_FAILED, self.err.read_text()
        return code

    def processes(self) -> dict[int, Proc]:
        """The namespace's processes as its own /proc shows them, by their pid in it."""
        table = {}
        for entry in Path(f"/proc/{self.pid}/root/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                argv = (entry / "cmdline").read_bytes().split(b"\0")[:-1]
            except (FileNotFoundError, ProcessLookupError):
                continue  # it ended while we looked
            fields = stat.rpartition(")")[2].split()
            table[int(entry.name)] = Proc(int(fields[1]), fields[0],
                                          tuple(arg.decode() for arg in argv))
        return table

    def running(self, pid: int, argv: Sequence[str]) -> None:
        """Wait until the namespace's process ``pid`` has exec'd ``argv``."""
        eventually(self.processes, lambda table: pid in table and table[pid].argv == tuple(argv))

    def host_pid_of_child(self) -> int:
        """The host's pid of PID 1's first child (the command under ctr-init)."""
        children = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        return int(eventually(children.read_text, lambda text: bool(text.split())).split()[0])


@contextlib.contextmanager
def launch(argv: Sequence[str], tmp: Path, *, stdin: int | None = None, tty: int | None = None,
           root: Path | None = None) -> Iterator[Namespace]:
    """Run ``argv`` as PID 1 of a new pid namespace; stdout and stderr go to files in ``tmp``
    (or everything to the terminal ``tty``, which becomes the controlling one); with ``root``,
    PID 1 chroots there before it execs."""
    out, err = tmp / "out", tmp / "err"
    with contextlib.ExitStack() as stack:
        null = os.open(os.devnull, os.O_RDONLY)
        stack.callback(os.close, null)
        files = [os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644) for path in (out, err)]
        for fd in files:
            stack.callback(os.close, fd)
        stdio = (tty, tty, tty) if tty is not None else (
            null if stdin is None else stdin, files[0], files[1])
        go_r, go_w = os.pipe()
        report_r, report_w = os.pipe()
        stack.callback(os.close, report_r)
        keeper = os.fork()
        if keeper == 0:
            _keeper(argv, stdio, tty is not None, root, go_r, report_w)
        stack.callback(os.waitpid, keeper, 0)
        os.close(go_r)
        os.close(report_w)
        pidfd, buffer = None, b""
        try:
            while b"\n" not in buffer:
                chunk = os.read(report_r, 64)
                assert chunk, f"the keeper failed: {err.read_text()}"
                buffer += chunk
            line, _, buffer = buffer.partition(b"\n")
            pidfd = os.pidfd_open(int(line))  # PID 1 cannot end before the go: no pid reuse
            stack.callback(os.close, pidfd)
            os.write(go_w, b"G")
        finally:
            os.close(go_w)
        stack.callback(_kill, pidfd)  # first: the namespace ends with its PID 1
        yield Namespace(int(line), pidfd, report_r, buffer, out, err)


def _kill(pidfd: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)


def _keeper(argv: Sequence[str], stdio: tuple[int, int, int], tty: bool, root: Path | None,
            go_r: int, report_w: int) -> NoReturn:
    try:
        syscalls.close_inherited([*stdio, go_r, report_w])
        syscalls.prctl(syscalls.PR_SET_PDEATHSIG, signal.SIGKILL)
        syscalls.unshare(syscalls.CLONE_NEWPID | syscalls.CLONE_NEWNS)
        syscalls.mount(None, "/", None, syscalls.MS_REC | syscalls.MS_PRIVATE)
        pid = os.fork()
        if pid == 0:
            _pid1(argv, stdio, tty, root, go_r)
        os.close(go_r)
        os.write(report_w, f"{pid}\n".encode())
        _, status = os.waitpid(pid, 0)
        os.write(report_w, f"{status}\n".encode())
        os._exit(0)
    except BaseException:
        traceback.print_exc(file=os.fdopen(stdio[2], "w"))
        os._exit(HARNESS_FAILED)


def _pid1(argv: Sequence[str], stdio: tuple[int, int, int], tty: bool, root: Path | None,
          go_r: int) -> NoReturn:
    try:
        syscalls.prctl(syscalls.PR_SET_PDEATHSIG, signal.SIGKILL)
        syscalls.mount("proc", "/proc", "proc",
                       syscalls.MS_NOSUID | syscalls.MS_NODEV | syscalls.MS_NOEXEC)
        program = os.open(argv[0], os.O_PATH | os.O_CLOEXEC)
        if tty:
            os.setsid()
            fcntl.ioctl(stdio[0], termios.TIOCSCTTY, 0)
        for target, fd in enumerate(stdio):
            os.dup2(fd, target)
        if root is not None:
            os.chroot(root)
            os.chdir("/")
        if os.read(go_r, 1) != b"G":
            os._exit(HARNESS_FAILED)
        os.execve(program, list(argv), {"PATH": PATH})
    except BaseException:
        traceback.print_exc()
    os._exit(HARNESS_FAILED)


def run(argv: Sequence[str], tmp: Path) -> tuple[int, str]:
    """Run to the end: PID 1's exit code and stderr."""
    with launch(argv, tmp) as ns:
        return ns.wait(), ns.err.read_text()


@pytest.mark.parametrize(("script", "code"), [("exit 0", 0), ("exit 3", 3),
                                              ("kill -KILL $$", 128 + signal.SIGKILL)])
def test_the_exit_status_is_the_commands(tmp_path: Path, script: str, code: int) -> None:
    assert run(sh(script), tmp_path) == (code, "")


def test_a_command_can_kill_itself_only_under_the_init(tmp_path: Path) -> None:
    # PID 1 of a namespace is immune to signals from inside it, even to its own SIGKILL.
    assert run(sh("kill -KILL $$; exit 4", init=False), tmp_path)[0] == 4


def test_a_missing_or_unexecutable_program_fails_as_in_a_shell(tmp_path: Path) -> None:
    assert run([str(INIT), "/no/such/program"], tmp_path) == (
        127, "ctr-init: /no/such/program: No such file or directory\n")
    assert run([str(INIT), "--", "no-such-command", "-x"], tmp_path) == (
        127, "ctr-init: no-such-command: No such file or directory\n")
    data = tmp_path / "data"
    data.write_text("not a program\n")
    assert run([str(INIT), str(data)], tmp_path) == (126, f"ctr-init: {data}: Permission denied\n")


def test_without_a_command_it_says_how_to_use_it(tmp_path: Path) -> None:
    assert run([str(INIT), "--"], tmp_path) == (125, "usage: ctr-init [--] PROGRAM [ARGS...]\n")


def test_the_command_is_pid_2_under_the_init(tmp_path: Path) -> None:
    with launch(sh("echo $$; exec /bin/busybox sleep 60"), tmp_path) as ns:
        ns.running(2, SLEEP)
        assert ns.processes()[1].argv[0] == str(INIT)
        assert ns.out.read_text() == "2\n"
    assert run(sh("echo $$", init=False), tmp_path)[0] == 0
    assert (tmp_path / "out").read_text() == "1\n"


def test_the_command_starts_with_no_signal_blocked_or_ignored(tmp_path: Path) -> None:
    """Whatever the init inherited: SIGPIPE from Python, which forks PID 1 as ctr's is, and
    what a launcher ignored, glibc's own signal 32 included."""
    grep = [BUSYBOX, "grep", "-E", "SigBlk|SigIgn", "/proc/self/status"]
    with ignoring(*LAUNCHER_IGNORES) as launcher:
        assert run([str(INIT), *grep], tmp_path)[0] == 0
        assert (tmp_path / "out").read_text().split() == ["SigBlk:", "0" * 16,
                                                          "SigIgn:", "0" * 16]
        assert run(grep, tmp_path)[0] == 0  # without the init: what the init was given
    ignored = int((tmp_path / "out").read_text().split()[-1], 16)
    assert ignored & 1 << (signal.SIGPIPE - 1) and ignored & launcher == launcher


def test_sigterm_to_the_init_ends_a_sleep_at_once(tmp_path: Path) -> None:
    with launch([str(INIT), *SLEEP], tmp_path) as ns:
        ns.running(2, SLEEP)
        ns.signal(signal.SIGTERM)
        assert ns.wait() == 128 + signal.SIGTERM  # the init's exit code, not a death by signal


def test_sigterm_to_a_sleep_as_pid_1_is_lost(tmp_path: Path) -> None:
    with launch(SLEEP, tmp_path) as ns:
        ns.running(1, SLEEP)
        ns.signal(signal.SIGTERM)  # dropped as it is sent: a fatal one would be recorded now
        ns.signal(signal.SIGKILL)
        assert ns.wait() == -signal.SIGKILL


def test_kill_of_pid_1_from_inside_reaches_the_command(tmp_path: Path) -> None:
    script = "/bin/busybox kill -TERM 1; exec /bin/busybox sleep 60"
    assert run(sh(script), tmp_path)[0] == 128 + signal.SIGTERM
    with launch(sh(script, init=False), tmp_path) as ns:
        ns.running(1, SLEEP)  # the kill did nothing
        ns.signal(signal.SIGKILL)
        assert ns.wait() == -signal.SIGKILL


def test_signals_are_forwarded_to_the_command(tmp_path: Path) -> None:
    got, ready = tmp_path / "got", tmp_path / "ready"
    sent = [signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH,
            signal.SIGTSTP, signal.SIGCONT, signal.SIGRTMIN + 1, signal.SIGRTMAX]
    traps = "; ".join(f"trap 'echo {int(sig)} >> {got}' {int(sig)}" for sig in sent)
    script = (f"{traps}; /bin/busybox sleep 60 & echo ready > {ready}; "
              "while kill -0 $! 2>/dev/null; do wait $!; done")
    with launch(sh(script), tmp_path) as ns:
        eventually(ready.exists, bool)
        for count, sig in enumerate(sent, 1):
            ns.signal(sig)  # one at a time: the shell runs its traps in no particular order
            eventually(lambda: got.read_text().split() if got.exists() else [],
                       [str(int(sig)) for sig in sent[:count]].__eq__)
        assert ns.processes()[2].state == "S"  # trapped, still running
        ns.signal(signal.SIGTERM)  # untrapped: the shell ends, and with it the container
        assert ns.wait() == 128 + signal.SIGTERM


def test_the_init_ends_with_the_command_and_takes_the_rest_along(tmp_path: Path) -> None:
    with _pipe() as (stdin, feed), launch(sh("/bin/busybox sleep 60 & exec /bin/busybox cat"),
                                          tmp_path, stdin=stdin) as ns:
        ns.running(2, (BUSYBOX, "cat"))
        cat = ns.host_pid_of_child()
        children = Path(f"/proc/{cat}/task/{cat}/children")
        sleep = os.pidfd_open(int(eventually(children.read_text, bool)))
        try:
            os.close(feed)  # cat ends; its background sleep would go on for a minute
            assert ns.wait() == 0
            assert select.select([sleep], [], [], 0)[0]  # a pidfd is readable once it ended
        finally:
            os.close(sleep)


@contextlib.contextmanager
def _pipe() -> Iterator[tuple[int, int]]:
    """A pipe whose ends are closed at the end unless the test closed them itself."""
    ends = os.pipe()
    try:
        yield ends
    finally:
        for fd in ends:
            with contextlib.suppress(OSError):
                os.close(fd)


ORPHANS = 50
CAT = (BUSYBOX, "cat")
# Each orphan's parent (a subshell) exits at once; the orphan reads stdin until the test closes it
# (through fd 3: the shell gives a background command /dev/null as its stdin).
SPAWN_ORPHANS = (f"exec 3<&0; i=0; while [ $i -lt {ORPHANS} ]; do "
                 "(/bin/busybox cat <&3 >/dev/null &); i=$((i+1)); done; "
                 "exec /bin/busybox sleep 60")


@pytest.mark.parametrize("init", [True, False], ids=["init", "sleep-as-pid-1"])
def test_orphans_are_reaped_only_by_the_init(tmp_path: Path, init: bool) -> None:
    with _pipe() as (stdin, feed), launch(sh(SPAWN_ORPHANS, init), tmp_path, stdin=stdin) as ns:
        ns.running(2 if init else 1, SLEEP)
        orphans = eventually(
            lambda: {pid: proc for pid, proc in ns.processes().items() if proc.argv == CAT},
            lambda found: len(found) == ORPHANS)
        assert {(proc.ppid, proc.state) for proc in orphans.values()} == {(1, "S")}
        os.close(feed)  # every orphan reads EOF and exits
        if init:
            left = eventually(ns.processes, lambda table: len(table) == 2)
            assert {pid: proc.argv for pid, proc in left.items()} == {
                1: (str(INIT), *sh(SPAWN_ORPHANS, init=False)), 2: SLEEP}
        else:
            zombies = eventually(
                lambda: [pid for pid, proc in ns.processes().items() if proc.state == "Z"],
                lambda found: len(found) == ORPHANS)
            assert sorted(zombies) == sorted(orphans)


def test_the_command_is_the_terminals_foreground_so_ctrl_c_ends_it(tmp_path: Path) -> None:
    master, slave = os.openpty()
    try:
        with launch([str(INIT), *SLEEP], tmp_path, tty=slave) as ns:
            ns.running(2, SLEEP)
            command = ns.host_pid_of_child()
            eventually(lambda: os.tcgetpgrp(master), lambda group: group == command)
            os.write(master, b"\x03")
            assert ns.wait() == 128 + signal.SIGINT
        with launch(SLEEP, tmp_path, tty=slave) as ns:
            ns.running(1, SLEEP)
            os.write(master, b"\x03")
            echoed = b""
            while b"^C" not in echoed:  # echoed once the line discipline has sent SIGINT
                assert select.select([master], [], [], 10)[0], echoed
                echoed += os.read(master, 64)
            ns.signal(signal.SIGKILL)
            assert ns.wait() == -signal.SIGKILL  # the SIGINT was lost on a sleep as PID 1
    finally:
        os.close(master)
        os.close(slave)


def test_it_runs_in_a_root_without_libc_and_finds_the_command_on_its_path(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "bin").mkdir(parents=True)
    shutil.copy(BUSYBOX, root / "bin" / "busybox")
    (root / "bin" / "sh").symlink_to("busybox")
    # ctr-init is exec'd through a descriptor opened before the chroot: it is not in the root.
    with launch([str(INIT), "sh", "-c", "exit 7"], tmp_path, root=root) as ns:
        assert ns.wait() == 7
    assert sorted(path.name for path in root.rglob("*")) == ["bin", "busybox", "sh"]


def test_socket_activation_names_the_command_not_the_init(tmp_path: Path) -> None:
    # ctrd sets LISTEN_PID=1 for PID 1; sd_listen_fds() in the command takes the fds only if it
    # names the command itself.
    echo = sh('echo "$LISTEN_PID $LISTEN_FDS"', init=False)
    for given, seen in (("1", "2"), ("7", "7")):
        env = ["/usr/bin/env", f"LISTEN_PID={given}", "LISTEN_FDS=1"]
        assert run([*env, str(INIT), *echo], tmp_path) == (0, "")
        assert (tmp_path / "out").read_text() == f"{seen} 1\n"


def test_the_command_alone_holds_the_descriptors_it_inherited(tmp_path: Path) -> None:
    # One beyond stdio (a socket, a readiness pipe): once the command closes it, its reader sees
    # the end although the init goes on.
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        command = "exec 3>&-; exec /bin/busybox sleep 60"
        with launch(sh(f"exec 3>{fifo}; exec {INIT} /bin/busybox sh -c '{command}'", init=False),
                    tmp_path) as ns:
            ns.running(2, SLEEP)  # fd 3 was open for writing before the init started
            assert select.select([reader], [], [], 10)[0]
            assert os.read(reader, 1) == b""
    finally:
        os.close(reader)


def test_no_process_of_the_container_can_open_the_inits_executable(tmp_path: Path) -> None:
    # As container root without CAP_SYS_PTRACE, which ctr drops: exec'd through a descriptor, the
    # init's /proc/1/exe is a file of the host.
    no_ptrace = ["/usr/bin/setpriv", "--bounding-set", "-sys_ptrace"]
    probe = "/bin/busybox cat /proc/1/exe >/dev/null"
    assert run([*no_ptrace, str(INIT), *sh(probe, init=False)], tmp_path) == (
        1, "cat: can't open '/proc/1/exe': Permission denied\n")
    assert run([*no_ptrace, *sh(probe, init=False)], tmp_path) == (0, "")  # a shell as PID 1


def test_not_pid_1_it_still_gets_the_orphans(tmp_path: Path) -> None:
    # In a pid namespace it shares (pid = "container:OTHER"), the init is a child subreaper.
    script = "(exec /bin/busybox sleep 60 &); exec /bin/busybox cat"
    with _pipe() as (stdin, feed), contextlib.ExitStack() as stack:
        init = subprocess.Popen([str(INIT), *sh(script, init=False)], stdin=stdin)
        stack.callback(init.wait)
        stack.callback(_kill_process, init)
        children = Path(f"/proc/{init.pid}/task/{init.pid}/children")
        pids = eventually(lambda: children.read_text().split(), lambda found: len(found) == 2)
        orphans = [pid for pid in pids if Path(f"/proc/{pid}/cmdline").read_bytes().split(
            b"\0")[:-1] == [arg.encode() for arg in SLEEP]]
        assert len(orphans) == 1  # its parent, the subshell, has exited: the init adopted it
        orphan = os.pidfd_open(int(orphans[0]))
        stack.callback(os.close, orphan)
        stack.callback(_kill, orphan)  # left behind outside a namespace of its own
        os.close(feed)
        assert init.wait(timeout=10) == 0


def _kill_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
