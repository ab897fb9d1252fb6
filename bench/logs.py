"""Part: logs (issue 16, section 5). What the shim as the writer of a container's log costs, and
what it keeps when ctrd is killed.

1. Memory: ctr-shim beside an idle PID 1, without ``--log-dir`` (ctr-shim before it wrote logs:
   it only waits for PID 1) and with it, and after a flood (the buffers it touched); and what
   ctrd's journal relay holds per container (tracemalloc of the relay's objects).
2. Throughput: busybox ``seq 1 N`` as PID 1's only work, its stdout (a) into /dev/null (the
   program alone), (b) straight into a file as PID 1 wrote its log before, (c) through the shim
   as CRI records into files rotated at the default 10M x 3, (d) as (c) with every record also
   into the journal's socket, relayed by ctrd's own ``LogRelay`` to a stand-in journald (a
   datagram socket a thread empties). Each process is started as ctrd's spawn handshake starts
   them, minus the namespaces: the shim is PID 1's parent and holds its pipes (``--harness``).
   CPU is the shim's with its child's (wait4), and for (d) ctrd's event loop thread's.
3. kill -9: a container floods numbered lines under a private ctrd without systemd, ctrd is
   killed with SIGKILL three times meanwhile and started again; the lines missing from, and
   doubled in, the rotated files afterwards. (Under systemd the journal's side of the same is
   tests/e2e/test_systemd_e2e.py: none lost there either, at most one line sent twice.)
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from bench import host
from bench.common import IMAGE, REPO, Section, median, table
from bench.daemon import Ctrd
from supervisor.daemon.logfiles import read_text
from supervisor.daemon.logs import LogRelay
from supervisor.model.logs import DEFAULT_MAX_FILES, DEFAULT_MAX_SIZE
from supervisor.runtime.logwriter import LogPipes, LogTarget
from supervisor.runtime.process import helper_path
from supervisor.systemd.journal import JournalWriter

BUSYBOX = str(IMAGE / "bin" / "busybox")
MODES = ("devnull", "file", "shim", "journal")
KILLS = 3
ROUNDS = 3


# -- the harness: becomes ctr-shim, PID 1's parent, as the spawn handshake's intermediate does ----

def _harness(mode: str, directory: str, journal: int, go: int, argv: list[str]) -> None:
    """Once told to go on ``go`` (after which the clock runs; the CPU spent so far is sent
    first), PID 1 is forked and this process becomes its shim."""
    shim = helper_path("ctr-shim")
    os.write(go, f"{time.process_time()}\n".encode())
    if os.read(go, 1) != b"g":
        os._exit(1)
    os.close(go)
    if mode in ("shim", "journal"):
        target = LogTarget(directory, "bench.log", DEFAULT_MAX_SIZE, DEFAULT_MAX_FILES,
                           journal if mode == "journal" else None)
        pipes = LogPipes(target, lambda fd: fd)
        out = pipes.writes[0]
    else:
        pipes = None
        path = os.devnull if mode == "devnull" else os.path.join(directory, "bench.log")
        out = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
    child = os.fork()
    if child == 0:
        os.dup2(out, 1)
        os.dup2(pipes.writes[1] if pipes else out, 2)
        os.execv(argv[0], argv)
    os.execv(shim, ["ctr-shim", *(pipes.shim_arguments() if pipes else []), str(child)])


class _Run:
    """The harness for ``argv`` in ``mode``, started and waiting for ``go``."""

    def __init__(self, mode: str, directory: Path, argv: list[str],
                 journal: int | None = None) -> None:
        ours, theirs = socket.socketpair()
        with ours, theirs:
            fds = (theirs.fileno(),) if journal is None else (theirs.fileno(), journal)
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bench.logs", "--harness", mode, str(directory),
                 str(-1 if journal is None else journal), str(theirs.fileno()), *argv],
                cwd=REPO, pass_fds=fds, stdin=subprocess.DEVNULL)
            theirs.close()
            self._before = float(ours.makefile().readline())  # its CPU before it goes on
            self.began = time.perf_counter()
            ours.send(b"g")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait(self) -> tuple[float, float]:
        """Wall seconds since "go" to the shim's exit, and the CPU seconds of the shim (the
        harness became it) and its child since."""
        _, status, usage = os.wait4(self.proc.pid, 0)
        wall = time.perf_counter() - self.began
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        if self.proc.returncode:
            raise RuntimeError(f"the harness ended with {self.proc.returncode}")
        return wall, usage.ru_utime + usage.ru_stime - self._before


# -- 1. memory ------------------------------------------------------------------------------------

def _shim_memory(mode: str, directory: Path, flood: int) -> dict[str, int]:
    """The shim's memory once its child has printed ``flood`` lines and sleeps."""
    script = f"{BUSYBOX} seq 1 {flood}; exec {BUSYBOX} sleep 1000" if flood else \
        f"exec {BUSYBOX} sleep 1000"
    proc = _Run(mode, directory, [BUSYBOX, "sh", "-c", script])
    try:
        deadline = time.monotonic() + 60
        while True:
            children = host.children(proc.pid)
            ready = children and Path(f"/proc/{children[0]}/comm").read_text().strip() == "sleep"
            if ready or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        time.sleep(0.2)  # the shim is done with what the flood wrote
        memory = host.memory_kib(proc.pid)
    finally:
        host.kill_all(host.children(proc.pid))
        proc.proc.wait()  # with 137, as the shim does when PID 1 is killed
    return memory


def _relay_bytes(containers: int = 200) -> float:
    """What ctrd's relay holds per container: its objects, by tracemalloc."""
    async def scenario() -> float:
        relay = LogRelay(Path(tempfile.gettempdir()), journal=JournalWriter("/nonexistent"))
        tracemalloc.start()
        before = tracemalloc.take_snapshot()
        ends = [relay.open(f"bench-{n}", f"ctr@bench-{n}.service") for n in range(containers)]
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
        grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
        for n, end in enumerate(ends):
            os.close(end)
            relay.release(f"bench-{n}")
        relay.close()
        return grown / containers
    return asyncio.run(scenario())


# -- 2. throughput --------------------------------------------------------------------------------

_DRAIN = """
import socket, sys
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
sock.bind(sys.argv[1])
print("ready", flush=True)
sock.settimeout(1)
count = 0
try:
    while True:
        sock.recv(1 << 16)
        count += 1
except TimeoutError:
    print(count)
"""


class _Journald:
    """A stand-in journald: a datagram socket another process empties, counting the entries
    (until nothing came for a second)."""

    def __init__(self, directory: Path) -> None:
        self.path = str(directory / "journal")
        self._proc = subprocess.Popen([sys.executable, "-c", _DRAIN, self.path],
                                      stdout=subprocess.PIPE, text=True)
        assert self._proc.stdout is not None
        if self._proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the stand-in journald did not start")

    def close(self) -> int:
        out, _ = self._proc.communicate(timeout=60)
        return int(out.strip())


def _flood(mode: str, lines: int) -> dict[str, float]:
    """One flood of ``lines`` through ``mode``: wall and CPU seconds, bytes written."""
    with tempfile.TemporaryDirectory(prefix="ctr-bench-logs-") as tmp:
        directory = Path(tmp)
        argv = [BUSYBOX, "seq", "1", str(lines)]
        if mode != "journal":
            wall, cpu = _Run(mode, directory, argv).wait()
            relay_cpu, entries = 0.0, lines
        else:
            wall, cpu, relay_cpu, entries = asyncio.run(_relayed(directory, argv))
        written = sum(p.stat().st_size for p in directory.glob("bench.log*"))
        kept = len(read_text(directory / "bench.log").split()) if mode != "devnull" else lines
    return {"wall": wall, "cpu": cpu, "relay_cpu": relay_cpu, "written": written,
            "kept": kept, "entries": entries}


async def _relayed(directory: Path, argv: list[str]) -> tuple[float, float, float, int]:
    journald = _Journald(directory)
    relay = LogRelay(directory, journal=JournalWriter(journald.path))
    journal = relay.open("bench", None)
    run = _Run("journal", directory, argv, journal)
    os.close(journal)
    loop_cpu = time.thread_time()
    _, cpu = await asyncio.get_running_loop().run_in_executor(None, run.wait)
    relay.release("bench")
    wall = time.perf_counter() - run.began
    relay_cpu = time.thread_time() - loop_cpu
    relay.close()
    return wall, cpu, relay_cpu, journald.close()


# -- 3. kill -9 -----------------------------------------------------------------------------------

def _killed(prefix: str, pool: str, lines: int) -> dict[str, int]:
    """Numbered lines flooded in 100 bursts, ctrd killed KILLS times meanwhile."""
    burst = lines // 100
    definition = f"""\
[container]
image = "{IMAGE}"
command = ["/bin/sh", "-c", "k=0; while [ $k -lt 100 ]; do seq $((k*{burst}+1)) \
$((k*{burst}+{burst})); sleep 0.05; k=$((k+1)); done; echo done; exec sleep 1000000"]
[network]
mode = "none"
[logs]
max_size = "16M"
max_files = 20
[restart]
stop_signal = "SIGKILL"
"""
    name = f"{prefix}log"
    with Ctrd(prefix, f"{prefix}br9", pool, {"flood": definition}) as ctrd:
        ctrd.launch("flood", name)
        log = ctrd.workdir / "data" / "logs" / f"{name}.log"
        for _ in range(KILLS):
            time.sleep(0.8)
            ctrd.crash_and_restart()
        deadline = time.monotonic() + 120
        while b" stdout F done\n" not in _tail(log):
            if time.monotonic() > deadline:
                raise RuntimeError("the flood did not end")
            time.sleep(0.2)
        numbers = [int(word) for word in read_text(log).split() if word.isdigit()]
        files = len(list(log.parent.glob(f"{name}.log*")))
        ctrd.remove(name)
    return {"lines": lines, "kept": len(numbers), "missing": len(set(range(1, lines + 1))
                                                                - set(numbers)),
            "doubled": len(numbers) - len(set(numbers)), "in_order": int(numbers == sorted(
                numbers)), "files": files}


def _tail(path: Path) -> bytes:
    try:
        with path.open("rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 128))
            return f.read()
    except FileNotFoundError:
        return b""


# -- the part -----------------------------------------------------------------------------------

def measure(prefix: str, pool: str, lines: int) -> Section:
    section = Section("Logs: the shim as the writer, rotation, and ctrd killed during a flood")
    with tempfile.TemporaryDirectory(prefix="ctr-bench-logs-") as tmp:
        memory = {(mode, flood): _shim_memory(mode, Path(tmp), flood)
                  for mode in ("devnull", "shim") for flood in (0, lines)}
    relay = _relay_bytes()
    def private(kib: dict[str, int]) -> int:
        return kib["Private_Clean"] + kib["Private_Dirty"]

    section.add(table(["ctr-shim", "idle PSS KiB", "idle private KiB", f"PSS after {lines} lines",
                       "private after"], [
        [label, memory[mode, 0]["Pss"], private(memory[mode, 0]), memory[mode, lines]["Pss"],
         private(memory[mode, lines])]
        for mode, label in (("devnull", "without --log-dir (waits for PID 1 only)"),
                            ("shim", "writing the log"))]),
        f"ctrd's journal relay (systemd hosts only) holds {relay / 1024:.1f} KiB per container.")
    floods = {mode: [_flood(mode, lines) for _ in range(ROUNDS)] for mode in MODES}
    rows = []
    for mode, label in zip(MODES, ("/dev/null (the program alone)", "a file, written by PID 1",
                                   "the shim: CRI records, rotated 10M x 3",
                                   "the shim, and the journal through ctrd's relay"), strict=True):
        runs = floods[mode]
        wall = median([r["wall"] for r in runs])
        rows.append([label, f"{wall:.2f}", f"{lines / wall / 1e6:.2f}",
                     f"{median([r['cpu'] for r in runs]) / lines * 1e9:.0f}",
                     f"{median([r['relay_cpu'] for r in runs]) / lines * 1e9:.0f}",
                     f"{median([r['written'] for r in runs]) / 2**20:.1f}",
                     int(median([r["kept"] for r in runs])),
                     int(median([r["entries"] for r in runs]))])
    section.add(table(["busybox seq 1 N, stdout into", "s", "M lines/s", "ns/line shim+seq",
                       "ns/line ctrd", "MiB on disk", "lines kept", "journal entries"], rows))
    killed = _killed(prefix, pool, lines)
    section.add(table(["numbered lines", "ctrd kill -9 + restart", "lines kept", "missing",
                       "doubled", "in order", "files"],
                      [[killed["lines"], KILLS, killed["kept"], killed["missing"],
                        killed["doubled"], "yes" if killed["in_order"] else "no",
                        killed["files"]]]))
    section.add(f"N = {lines}, median of {ROUNDS} rounds; times and CPU from the moment the "
                "harness (started before) forks PID 1 and becomes ctr-shim. \"lines kept\" "
                "counts what the files hold after the flood (the cap keeps 30 MiB: a flood "
                "beyond it keeps its newest lines).")
    section.data = {"lines": lines, "memory": {f"{m}/{f}": v for (m, f), v in memory.items()},
                    "relay_bytes": relay, "floods": floods, "killed": killed}
    return section


if __name__ == "__main__" and sys.argv[1:2] == ["--harness"]:
    mode, directory, journal, go, *command = sys.argv[2:]
    _harness(mode, directory, int(journal), int(go), command)
