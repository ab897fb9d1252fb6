"""The VM's guest, built offline into a cache: Debian's kernel and a small initramfs.

The kernel is Debian's own ``linux-image-*-amd64`` (the one ``linux-image-amd64`` depends on),
fetched with ``apt-get download`` and unpacked with ``dpkg-deb -x``: never installed on the host.
The initramfs holds the host's static busybox, the host's sysbench with every library ``ldd``
names (at the same paths, so the guest runs the very binary the host and the containers run), and
the kernel modules for a virtio disk and NIC (with ``busybox depmod`` over them). Its /init mounts
the disk, configures the NIC from the kernel command line, prints markers on the serial console,
and then serves a shell on it (see bench/channel.py).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

CACHE = Path(os.environ.get("CTR_BENCH_CACHE", "/var/cache/ctr-bench"))
BUSYBOX = Path("/bin/busybox")
PROGRAMS = (Path("/usr/bin/sysbench"),)
MODULES = ("virtio_pci", "virtio_blk", "virtio_net", "crc32c_generic", "ext4")
# "@@UP" is the first thing user space does (the counterpart of a container's PID 1 exec'ing);
# "@@READY" comes once the disk and NIC are up and the serial line is raw.
INIT = """\
#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
echo "@@UP $(/bin/busybox cut -d' ' -f1 /proc/uptime)"
/bin/busybox --install -s /bin
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for module in {modules}; do modprobe $module; done
if [ -b /dev/vda ]; then mount -t ext4 /dev/vda /work; fi
for arg in $(cat /proc/cmdline); do
    case $arg in bench.ip=*) ip=${{arg#bench.ip=}};; bench.gw=*) gw=${{arg#bench.gw=}};; esac
done
ip link set lo up
if [ -n "$ip" ]; then
    ip addr add $ip dev eth0 && ip link set eth0 up && ip route add default via $gw
fi
stty -F /dev/ttyS0 raw -echo
echo "@@READY $(cut -d' ' -f1 /proc/uptime)"
# The line as a script, so the shell is not interactive: no prompt, echo or line editing.
exec sh /dev/ttyS0 >/dev/ttyS0 2>&1
"""


@dataclass(frozen=True)
class Guest:
    kernel: Path
    initramfs: Path
    version: str  # the kernel package, e.g. linux-image-6.1.0-57-amd64


def kernel_package() -> str:
    """The versioned kernel package Debian's ``linux-image-amd64`` points at."""
    out = subprocess.run(["apt-cache", "depends", "linux-image-amd64"], check=True,
                         capture_output=True, text=True).stdout
    match = re.search(r"Depends: (linux-image-\S+-amd64)", out)
    if not match:
        raise RuntimeError(f"no kernel package in `apt-cache depends linux-image-amd64`:\n{out}")
    return match.group(1)


def unpacked_kernel(package: str) -> Path:
    """The package's files under the cache (downloaded and unpacked once)."""
    root = CACHE / package
    if not (root / "boot").is_dir():
        download = CACHE / "download"
        shutil.rmtree(download, ignore_errors=True)
        download.mkdir(parents=True)
        # _apt cannot write into a root-only cache: without a sandbox, as apt-get warns.
        subprocess.run(["apt-get", "download", "-q", "-o", "APT::Sandbox::User=root", package],
                       cwd=download, check=True, capture_output=True)
        (deb,) = download.glob("*.deb")
        shutil.rmtree(root, ignore_errors=True)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
        shutil.rmtree(download)
    return root


def libraries(program: Path) -> list[Path]:
    """The shared objects ``ldd`` resolves for ``program``, the ELF interpreter included."""
    out = subprocess.run(["ldd", str(program)], check=True, capture_output=True, text=True).stdout
    return [Path(path) for path in re.findall(r"(/\S+) \(0x", out)]


def _copy(source: Path, stage: Path) -> None:
    target = stage / source.relative_to("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source.resolve(), target)


def _modules(kernel_root: Path, release: str, stage: Path) -> None:
    """MODULES and what they depend on (from a ``busybox depmod`` of the package), copied with
    their paths, then a depmod of that subset so the guest's modprobe finds them."""
    tree = kernel_root / "lib" / "modules" / release
    if not (tree / "modules.dep").exists():
        subprocess.run([str(BUSYBOX), "depmod", "-b", str(kernel_root), release], check=True)
    dependencies = {}
    for line in (tree / "modules.dep").read_text().splitlines():
        module, _, needs = line.partition(":")
        dependencies[Path(module).name.removesuffix(".ko")] = [module, *needs.split()]
    for name in MODULES:
        for relative in dependencies[name]:
            target = stage / "lib" / "modules" / release / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(tree / relative, target)
    subprocess.run([str(BUSYBOX), "depmod", "-b", str(stage), release], check=True)


def build() -> Guest:
    """The kernel and initramfs, from the cache when nothing they are made of changed."""
    package = kernel_package()
    kernel_root = unpacked_kernel(package)
    (vmlinuz,) = (kernel_root / "boot").glob("vmlinuz-*")
    release = vmlinuz.name.removeprefix("vmlinuz-")
    inputs = hashlib.sha256(INIT.encode() + " ".join(MODULES).encode())
    for path in (BUSYBOX, *PROGRAMS):
        inputs.update(path.read_bytes())
    initramfs = CACHE / f"initramfs-{release}-{inputs.hexdigest()[:12]}.cpio"
    if not initramfs.exists():
        stage = CACHE / "stage"
        shutil.rmtree(stage, ignore_errors=True)
        for directory in ("bin", "dev", "proc", "sys", "tmp", "work"):
            (stage / directory).mkdir(parents=True)
        shutil.copy2(BUSYBOX, stage / "bin" / "busybox")
        for program in PROGRAMS:
            for path in (program, *libraries(program)):
                _copy(path, stage)
        _modules(kernel_root, release, stage)
        init = stage / "init"
        init.write_text(INIT.format(modules=" ".join(MODULES)))
        init.chmod(0o755)
        # Uncompressed: the guest then spends no time inflating it (much slower when emulated).
        files = subprocess.run(["find", "."], cwd=stage, check=True, capture_output=True).stdout
        with open(f"{initramfs}.tmp", "wb") as out:
            subprocess.run([str(BUSYBOX), "cpio", "-o", "-H", "newc"], cwd=stage, input=files,
                           stdout=out, stderr=subprocess.DEVNULL, check=True)
        os.replace(f"{initramfs}.tmp", initramfs)
        shutil.rmtree(stage)
    for stale in set(CACHE.glob("initramfs-*.cpio")) - {initramfs}:
        stale.unlink()  # built from an older /init, busybox or sysbench
    return Guest(vmlinuz, initramfs, package)
