"""Part: OCI images. A pull of one image from Debian's docker-registry on loopback by ctr,
skopeo and podman, each into an empty store every round; and the start of a 20-layer image
against the start of the busybox directory image, by ``ctrctl run`` and through ctrd's API.

The pulled image is made here from trees of the host (busybox, Python's standard library, the
documentation under /usr/share/doc: about 180 MB in 15 000 files, gzip level 6 as ``docker
build`` writes them), so every contender fetches and unpacks the same bytes. What each does:

- ``ctrctl pull``: fetch, verify and unpack every layer into the store, streamed together
  (the layers' directories are what a container mounts).
- ``skopeo copy docker://... oci:DIR``: fetch and verify, writing the compressed blobs; it
  unpacks nothing, so it does less than a pull for running. ``skopeo copy`` then ``umoci
  unpack`` is the like-for-like way with those tools (one merged tree instead of a directory
  per layer).
- ``podman pull``: fetch, verify and unpack into its overlay storage (a storage of its own).

Rounds interleave the contenders, so load from a colleague's tests slows them alike. Each pull
goes into a directory of its own (see ``_pulls`` for why none is removed on the disk before the
end); the registry and the page cache stay warm for all. The
pulls are measured twice: into the data directory's file system (this VM's ext4 on a virtual
disk, where creating an inode costs from 10 us to 1 ms depending on what else the host writes)
and into a tmpfs, which shows the work each does without the disk.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import shutil
import socket
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from hashlib import sha256
from pathlib import Path

from bench import host
from bench.common import CTRCTL, IMAGE, Section, median, ms, p95, table, timed, verdict
from bench.daemon import Ctrd, free_port

TREES = (Path("/usr/lib/python3.11"), Path("/usr/share/doc"))  # above the busybox tree
LAYERS = 20  # of the image whose start is measured
START_DEFINITION = """\
[container]
image = "{image}"
command = ["/bin/true"]
[network]
mode = "none"
"""
PODMAN = ("--cgroup-manager", "cgroupfs", "--events-backend", "file")
OCI = "application/vnd.oci"


def _tar(root: Path, arcname: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(root, arcname=arcname)
    return buffer.getvalue()


def _layout(path: Path, tars: list[bytes], config: dict[str, object]) -> None:
    """An OCI image layout of ``tars`` (bottom first), gzip level 6, tagged ``1``."""
    blobs = path / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def blob(data: bytes, media_type: str) -> dict[str, object]:
        digest = sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}

    layers = [blob(gzip.compress(t, 6, mtime=0), f"{OCI}.image.layer.v1.tar+gzip") for t in tars]
    image = {"architecture": "amd64", "os": "linux", "config": config,
             "rootfs": {"type": "layers",
                        "diff_ids": [f"sha256:{sha256(t).hexdigest()}" for t in tars]}}
    manifest = {"schemaVersion": 2, "mediaType": f"{OCI}.image.manifest.v1+json",
                "config": blob(json.dumps(image).encode(), f"{OCI}.image.config.v1+json"),
                "layers": layers}
    descriptor = blob(json.dumps(manifest).encode(), f"{OCI}.image.manifest.v1+json")
    descriptor["annotations"] = {"org.opencontainers.image.ref.name": "1"}
    (path / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [descriptor]}))
    (path / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')


class Registry:
    """docker-registry on a free loopback port, its storage in ``work``."""

    def __init__(self, work: Path) -> None:
        self.work = work
        work.mkdir(parents=True, exist_ok=True)
        self.host = f"127.0.0.1:{free_port()}"
        (work / "config.yml").write_text(
            "version: 0.1\nlog: {level: error}\n"
            f"storage: {{filesystem: {{rootdirectory: {work / 'storage'}}}}}\n"
            f"http: {{addr: {self.host}}}\n")
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Registry:
        self.process = subprocess.Popen(
            ["docker-registry", "serve", str(self.work / "config.yml")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        address, _, port = self.host.partition(":")
        for _ in range(200):
            with contextlib.suppress(OSError), socket.create_connection((address, int(port)), 1):
                return self
            time.sleep(0.05)
        raise RuntimeError("docker-registry did not come up")

    def __exit__(self, *_: object) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=20)

    def push(self, layout: Path, name: str) -> str:
        ref = f"{self.host}/bench/{name}:1"
        subprocess.run(["skopeo", "--insecure-policy", "copy", "--dest-tls-verify=false",
                        f"oci:{layout}:1", f"docker://{ref}"], check=True, capture_output=True)
        return ref


@contextlib.contextmanager
def _environment(work: Path, registry: Registry) -> Iterator[None]:
    """registries.conf marking the registry insecure, for ctrctl and ctrd started meanwhile."""
    conf = work / "registries.conf"
    conf.write_text(f'[[registry]]\nlocation = "{registry.host}"\ninsecure = true\n')
    before = os.environ.get("CONTAINERS_REGISTRIES_CONF")
    os.environ["CONTAINERS_REGISTRIES_CONF"] = str(conf)
    try:
        yield
    finally:
        if before is None:
            del os.environ["CONTAINERS_REGISTRIES_CONF"]
        else:
            os.environ["CONTAINERS_REGISTRIES_CONF"] = before


def _settled() -> None:
    """Whatever came before written out, so it does not slow whoever comes next."""
    os.sync()


def pullers(ref: str) -> dict[str, Callable[[Path], float]]:
    """Each contender's pull of ``ref`` into ``target``, a directory that does not exist yet;
    the seconds it took."""

    def ctr(target: Path) -> float:
        return timed([CTRCTL, "--data-dir", str(target), "pull", "-q", ref])

    def copy(target: Path) -> list[str]:
        return ["skopeo", "--insecure-policy", "copy", "-q", "--src-tls-verify=false",
                f"docker://{ref}", f"oci:{target / 'layout'}:1"]

    def skopeo(target: Path) -> float:
        target.mkdir()
        return timed(copy(target))

    def skopeo_umoci(target: Path) -> float:
        target.mkdir()
        begin = time.perf_counter()
        subprocess.run(copy(target), check=True, capture_output=True)
        subprocess.run(["umoci", "unpack", "--image", f"{target / 'layout'}:1",
                        str(target / "bundle")], check=True, capture_output=True)
        return time.perf_counter() - begin

    def podman(target: Path) -> float:
        runroot = Path(tempfile.mkdtemp(prefix="ctr-bench-podman-"))  # podman wants it short
        try:
            return timed(["podman", "--root", str(target), "--runroot", str(runroot),
                          "--storage-driver", "overlay", *PODMAN, "pull", "-q",
                          "--tls-verify=false", ref])
        finally:
            shutil.rmtree(runroot, ignore_errors=True)

    return {"ctrctl pull": ctr, "skopeo copy (to oci:, no unpack)": skopeo,
            "skopeo copy + umoci unpack": skopeo_umoci, "podman pull (overlay)": podman}


def measure(prefix: str, pool: str, rounds: int, starts: int) -> Section:
    section = Section("OCI images: pull and start")
    work = Path(tempfile.mkdtemp(prefix=f"ctr-bench-{prefix}-images-"))
    memory = Path(tempfile.mkdtemp(prefix=f"ctr-bench-{prefix}-", dir="/dev/shm"))
    try:
        with Registry(work / "registry") as registry, _environment(work, registry):
            big = _big_image(work, registry)
            pulls = {"disk": _pulls(work / "targets", big, rounds, keep=True),
                     "tmpfs": _pulls(memory, big, rounds, keep=False)}
            many = _many_layers(work, registry)
            started = _starts(prefix, pool, work, many, starts)
    finally:
        shutil.rmtree(memory, ignore_errors=True)
        host.sweep(prefix, work, section.add)
    report(section, pulls, started, rounds, starts)
    return section


def _big_image(work: Path, registry: Registry) -> str:
    tars = [_tar(IMAGE, ".")] + [_tar(tree, tree.relative_to("/").as_posix())
                                 for tree in TREES if tree.is_dir()]
    _layout(work / "big", tars, {"Cmd": ["/bin/sh"]})
    return registry.push(work / "big", "big")


def _many_layers(work: Path, registry: Registry) -> str:
    """busybox and 19 layers of one small file each: the start's cost per layer."""
    def one_file(n: int) -> bytes:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            info = tarfile.TarInfo(f"layers/{n:02}")
            info.size = 3
            tar.addfile(info, io.BytesIO(f"{n:02}\n".encode()))
        return buffer.getvalue()

    _layout(work / "many", [_tar(IMAGE, ".")] + [one_file(n) for n in range(1, LAYERS)],
            {"Cmd": ["/bin/sh"]})
    return registry.push(work / "many", "many")


def _pulls(targets: Path, ref: str, rounds: int, keep: bool) -> dict[str, list[float]]:
    """The contenders in turn, a warm-up round (untimed) then ``rounds``, each pull into a new
    directory. ``keep``: remove none before the end. ext4 will not reuse an inode deleted less
    than a minute ago and scans past every such one (``recently_deleted``, a quarter of a pull's
    CPU time when the previous round's tree has just been removed), so on the disk every round
    gets fresh inodes, as a pull on a long-running host does."""
    contenders = pullers(ref)
    targets.mkdir(parents=True, exist_ok=True)
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for round_number in range(rounds + 1):
        for index, (name, pull) in enumerate(contenders.items()):
            _settled()
            seconds = pull(targets / f"{round_number}-{index}")
            if round_number:
                samples[name].append(seconds)
        if not keep:
            for index in range(len(contenders)):
                shutil.rmtree(targets / f"{round_number}-{index}", ignore_errors=True)
    shutil.rmtree(targets, ignore_errors=True)
    return samples


def _starts(prefix: str, pool: str, work: Path, ref: str, runs: int) -> dict[str, list[float]]:
    """``ctrctl run --rm`` and an API start of /bin/true, the 20-layer image against busybox,
    interleaved; both images in the same data directory."""
    data, state = work / "data", work / "state"
    (data / "images").mkdir(parents=True)
    (data / "images" / "busybox").symlink_to(IMAGE)
    subprocess.run([CTRCTL, "--data-dir", str(data), "pull", "-q", ref], check=True,
                   capture_output=True)
    definitions = {"busybox": START_DEFINITION.format(image=IMAGE),
                   "layers": START_DEFINITION.format(image=ref)}
    counter = iter(range(10**9))

    def run(image: str) -> Callable[[], float]:
        return lambda: timed([CTRCTL, "--state-dir", str(state), "--data-dir", str(data), "run",
                              "--rm", "-q", "--name", f"{prefix}i{next(counter)}", "--network",
                              "none", "--image", image, "--", "/bin/true"])

    with Ctrd(prefix, f"{prefix}br8", pool, definitions) as ctrd:
        subprocess.run([CTRCTL, "--data-dir", str(ctrd.workdir / "data"), "pull", "-q", ref],
                       check=True, capture_output=True)

        def api(definition: str) -> Callable[[], float]:
            def start() -> float:
                name = f"{prefix}a{next(counter)}"
                begin = time.perf_counter()
                ctrd.launch(definition, name)
                elapsed = time.perf_counter() - begin
                ctrd.wait_state(name, "exited")
                ctrd.remove(name)
                return elapsed
            return start

        contenders = {"ctrctl run --rm, busybox directory": run("busybox"),
                      f"ctrctl run --rm, {LAYERS}-layer image": run(ref),
                      "ctrd API start, busybox directory": api("busybox"),
                      f"ctrd API start, {LAYERS}-layer image": api("layers")}
        for start in contenders.values():
            start()
        samples: dict[str, list[float]] = {name: [] for name in contenders}
        for _ in range(runs):
            for name, start in contenders.items():
                samples[name].append(start())
    return samples


def report(section: Section, pulls: dict[str, dict[str, list[float]]],
           starts: dict[str, list[float]], rounds: int, runs: int) -> None:
    section.add(f"Pull: {rounds} rounds, interleaved, each into an empty target; seconds.")
    rows = []
    for where, samples in pulls.items():
        medians = {name: median(values) for name, values in samples.items()}
        section.add(f"Into the {where}:", table(
            ["pull", "median", "min", "p95", "x ctrctl pull"],
            [[name, f"{medians[name]:.2f}", f"{min(values):.2f}", f"{p95(values):.2f}",
              f"{medians[name] / medians['ctrctl pull']:.2f}"]
             for name, values in samples.items()]))
        for peer in ("skopeo copy (to oci:, no unpack)", "skopeo copy + umoci unpack",
                     "podman pull (overlay)"):
            rows.append([f"{where}: ctrctl pull <= {peer}",
                         f"{medians['ctrctl pull']:.2f} s vs {medians[peer]:.2f} s",
                         verdict(medians["ctrctl pull"], medians[peer])])
    section.add(f"Start: {runs} runs each, interleaved; milliseconds. Under a colleague's load "
                "the medians move by tens of per cent from run to run; the minimum, the start "
                "with nothing in its way, shows the cost of the layers themselves.",
                table(["start of /bin/true", "median", "min", "p95"],
                      [[name, ms(median(values)), ms(min(values)), ms(p95(values))]
                       for name, values in starts.items()]))
    for way in ("ctrctl run --rm", "ctrd API start"):
        plain, layered = starts[f"{way}, busybox directory"], starts[f"{way}, {LAYERS}-layer image"]
        rows.append([f"{way}: {LAYERS} layers <= 1.1 x busybox",
                     f"median {median(layered) / median(plain):.3f} x, "
                     f"min {min(layered) / min(plain):.3f} x",
                     verdict(median(layered), 1.1 * median(plain))])
    section.add(table(["target (issue 13)", "result", "verdict"], rows))
    section.data = {"pull_s": pulls, "start_s": starts}
