"""A QEMU virtual machine as a peer: the guest of bench/guest.py, its serial line a Shell.

KVM is used where the host has hardware virtualization (the ``kvm_intel`` or ``kvm_amd``
module). This VM's /dev/kvm is served by ``kvm_pvm`` (software nested virtualization for
PVM-enabled guest kernels): a Debian kernel there runs its memory accesses through KVM's
instruction emulator (clear_bss at ~1.7 MB/s, then "emulation failure" on ``cmpxchg16b``), so
the benchmark falls back to QEMU's TCG emulation and says so beside every VM figure.
"""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
import time
from pathlib import Path

from bench.channel import Shell
from bench.guest import Guest

BOOT_TIMEOUT = 180.0


def accelerator() -> str:
    """``kvm`` with hardware virtualization behind /dev/kvm, else ``tcg``."""
    hardware = any(Path(f"/sys/module/{name}").exists() for name in ("kvm_intel", "kvm_amd"))
    return "kvm" if hardware and Path("/dev/kvm").exists() else "tcg"


class Vm:
    """``start()`` boots it (timed to the guest's first user-space line), ``stop()`` powers
    it off. ``cpus`` is the host CPU list the whole QEMU process is pinned to."""

    def __init__(self, guest: Guest, name: str, cpus: str, memory_mib: int, accel: str,
                 disk: Path | None = None, tap: str | None = None,
                 address: tuple[str, str] | None = None) -> None:
        self.guest = guest
        self.name = name
        self.cpus = cpus
        self.memory_mib = memory_mib
        self.accel = accel
        self.disk = disk
        self.tap = tap
        self.address = address  # (CIDR, gateway) of the guest's eth0
        self.process: subprocess.Popen[bytes] | None = None
        self.shell: Shell | None = None
        self.guest_uptime_s = 0.0  # the guest kernel's uptime at its first user-space line
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 (as long as QEMU runs)
        self.log = ""

    def argv(self) -> list[str]:
        append = "console=ttyS0 quiet panic=-1"
        if self.address:
            append += f" bench.ip={self.address[0]} bench.gw={self.address[1]}"
        argv = ["taskset", "-c", self.cpus, "qemu-system-x86_64", "-name", self.name,
                "-accel", self.accel, *(["-cpu", "host"] if self.accel == "kvm" else []),
                "-smp", "1", "-m", str(self.memory_mib), "-nodefaults", "-no-user-config",
                "-display", "none", "-serial", "stdio", "-no-reboot",
                "-kernel", str(self.guest.kernel), "-initrd", str(self.guest.initramfs),
                "-append", append]
        if self.disk:
            argv += ["-drive", f"file={self.disk},format=raw,if=virtio"]
        if self.tap:
            argv += ["-netdev", f"tap,id=n0,ifname={self.tap},script=no,downscript=no",
                     "-device", "virtio-net-pci,netdev=n0"]
        return argv

    def start(self) -> float:
        """Seconds from QEMU's exec to the guest's ``@@UP`` (its /init running); the shell is
        usable once ``ready()`` returns."""
        begin = time.perf_counter()
        self.process = subprocess.Popen(self.argv(), stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=self._log)
        self.shell = Shell(self.process, f"vm {self.name}")
        _, match = self.shell.wait_for(r"@@UP ([\d.]+)", BOOT_TIMEOUT)
        elapsed = time.perf_counter() - begin
        self.guest_uptime_s = float(match.group(1))
        return elapsed

    def ready(self) -> Shell:
        """The guest's shell, once /init has brought the disk and NIC up."""
        assert self.shell is not None
        self.shell.wait_for(r"@@READY [\d.]+\n", BOOT_TIMEOUT)
        return self.shell

    def ready_shell(self) -> Shell:
        """The shell of a guest ``ready()`` already waited for."""
        assert self.shell is not None
        return self.shell

    @property
    def pid(self) -> int:
        """QEMU's PID (taskset exec's it)."""
        assert self.process is not None
        return self.process.pid

    def stop(self) -> None:
        """``poweroff -f`` in the guest, SIGKILL if QEMU is still there 10 s later."""
        if self.process is None:
            return
        if self.process.poll() is None:
            with contextlib.suppress(OSError):
                assert self.shell is not None
                self.shell.send("poweroff -f")
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.seek(0)
        self.log = self._log.read().decode(errors="replace")  # QEMU's own messages
        self._log.close()
        self.process = None
