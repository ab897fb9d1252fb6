"""What the image tests run against: Debian's docker-registry on loopback, images built here.

``Registry`` is the reference distribution registry (``docker-registry serve CONFIG``) on
127.0.0.1 and a free port, optionally with TLS (a CA made by ``make_ca``) and htpasswd basic
auth; its access log tells how often a blob was fetched. ``Layout`` writes an OCI image layout
from layers the test describes member by member (so whiteouts, opaque directories, hard links,
setuid files, gzip and zstd are exactly what the test says), and ``skopeo`` pushes it.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.server
import io
import json
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zstandard

OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
SUFFIX = {"none": "", "gzip": "+gzip", "zstd": "+zstd"}
PODMAN_ISOLATION = ("--storage-driver", "vfs", "--cgroup-manager", "cgroupfs",
                    "--events-backend", "file")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class TLSFiles:
    ca: Path
    cert: Path
    key: Path


def make_ca(directory: Path) -> TLSFiles:
    """A CA and a server certificate for 127.0.0.1 signed by it (openssl)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca, ca_key = directory / "ca.crt", directory / "ca.key"
    cert, key = directory / "server.crt", directory / "server.key"
    quiet: dict[str, Any] = {"check": True, "capture_output": True}
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=ctr test CA", "-keyout", ca_key, "-out", ca], **quiet)
    csr = directory / "server.csr"
    subprocess.run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
                    "-keyout", key, "-out", csr], **quiet)
    extensions = directory / "san.cnf"
    extensions.write_text("subjectAltName = IP:127.0.0.1\n")
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key,
                    "-CAcreateserial", "-days", "2", "-extfile", extensions, "-out", cert],
                   **quiet)
    return TLSFiles(ca, cert, key)


class Registry:
    """docker-registry on 127.0.0.1; ``stop()`` is idempotent and always called by the
    ``registry`` context manager."""

    def __init__(self, work: Path, *, tls: TLSFiles | None = None,
                 users: dict[str, str] | None = None) -> None:
        self.work = work
        self.storage = work / "storage"
        self.port = free_port()
        self.tls = tls
        self.log = work / "registry.log"
        self.proc: subprocess.Popen[bytes] | None = None
        work.mkdir(parents=True, exist_ok=True)
        config = [
            "version: 0.1",
            "log: {level: info, accesslog: {disabled: false}}",
            f"storage: {{filesystem: {{rootdirectory: {self.storage}}}}}",
            "http:",
            f"  addr: 127.0.0.1:{self.port}",
        ]
        if tls is not None:
            config.append(f"  tls: {{certificate: {tls.cert}, key: {tls.key}}}")
        if users:
            htpasswd = work / "htpasswd"
            for i, (user, password) in enumerate(users.items()):
                subprocess.run(["htpasswd", "-Bb" + ("c" if i == 0 else ""), htpasswd, user,
                                password], check=True, capture_output=True)
            config.append(f"auth: {{htpasswd: {{realm: ctr-test, path: {htpasswd}}}}}")
        self.config = work / "config.yml"
        self.config.write_text("\n".join(config) + "\n")

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(["docker-registry", "serve", str(self.config)],
                                         stdout=log, stderr=log)
        deadline = time.monotonic() + 20
        while True:
            assert self.proc.poll() is None, f"registry exited: {self.log.read_text()[-2000:]}"
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", self.port), timeout=1):
                return
            assert time.monotonic() < deadline, "registry did not come up"
            time.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=20)
        self.proc = None

    def blob_fetches(self, blob_digest: str) -> int:
        """How many GET requests for the blob the registry answered (its access log)."""
        return sum(1 for line in self.log.read_text().splitlines()
                   if "GET /v2/" in line and f"/blobs/{blob_digest}" in line)

    def manifest_fetches(self, repository: str) -> int:
        """How many GET requests for a manifest of ``repository`` the registry answered."""
        return sum(1 for line in self.log.read_text().splitlines()
                   if f"GET /v2/{repository}/manifests/" in line)

    def blob_file(self, repository: str, blob_digest: str) -> Path:
        hexdigest = blob_digest.partition(":")[2]
        return self.storage / "docker/registry/v2/blobs/sha256" / hexdigest[:2] / hexdigest / "data"


@contextlib.contextmanager
def registry(work: Path, **kwargs: Any) -> Iterator[Registry]:
    server = Registry(work, **kwargs)
    try:
        server.start()
        yield server
    finally:
        server.stop()


# -- a registry of the test's own, for what docker-registry cannot show ---------------------

Handler = Callable[[http.server.BaseHTTPRequestHandler], None]


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        """A client hanging up early (on a refused manifest) is what the test wants."""


class FakeRegistry:
    """Routes a path to a handler; remembers every request's path and Authorization."""

    def __init__(self) -> None:
        self.routes: dict[str, Handler] = {}
        self.seen: list[tuple[str, str]] = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.seen.append((self.path, self.headers.get("Authorization", "")))
                route = owner.routes.get(self.path.split("?")[0])
                if route is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                route(self)

            def log_message(self, *args: object) -> None:
                pass

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def reply(status: int, body: bytes = b"", **headers: str) -> Handler:
    def handle(request: http.server.BaseHTTPRequestHandler) -> None:
        request.send_response(status)
        for name, value in headers.items():
            request.send_header(name.replace("_", "-"), value)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)
    return handle


# -- layers and images, member by member ---------------------------------------------------


@dataclass
class Entry:
    """A tar member: ``kind`` is a tarfile type; ``data`` for files."""

    name: str
    kind: bytes = tarfile.REGTYPE
    data: bytes = b""
    mode: int | None = None
    uid: int = 0
    gid: int = 0
    link: str = ""
    mtime: int = 1_600_000_000
    xattrs: dict[str, str] = field(default_factory=dict)

    def info(self) -> tarfile.TarInfo:
        info = tarfile.TarInfo(self.name)
        info.type = self.kind
        info.mode = self.mode if self.mode is not None else (
            0o755 if self.kind == tarfile.DIRTYPE else 0o644)
        info.uid, info.gid, info.mtime, info.linkname = self.uid, self.gid, self.mtime, self.link
        info.size = len(self.data) if self.kind == tarfile.REGTYPE else 0
        if self.kind == tarfile.CHRTYPE:
            info.devmajor, info.devminor = 1, 3
        info.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in self.xattrs.items()}
        return info


def directory(name: str, **kw: Any) -> Entry:
    return Entry(name, tarfile.DIRTYPE, **kw)


def symlink(name: str, target: str) -> Entry:
    return Entry(name, tarfile.SYMTYPE, link=target, mode=0o777)


def hardlink(name: str, target: str) -> Entry:
    return Entry(name, tarfile.LNKTYPE, link=target)


def whiteout(path: str) -> Entry:
    head, _, base = path.rpartition("/")
    return Entry(f"{head}/.wh.{base}" if head else f".wh.{base}")


def opaque(path: str) -> Entry:
    return Entry(f"{path}/.wh..wh..opq")


def tar_bytes(entries: list[Entry]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            tar.addfile(entry.info(), io.BytesIO(entry.data) if entry.kind == tarfile.REGTYPE
                        else None)
    return buffer.getvalue()


def compress(data: bytes, compression: str) -> bytes:
    if compression == "gzip":
        return gzip.compress(data, compresslevel=1, mtime=0)
    if compression == "zstd":
        return zstandard.ZstdCompressor().compress(data)
    return data


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Layout:
    """An OCI image layout directory written blob by blob."""

    def __init__(self, path: Path) -> None:
        self.path = path
        (path / "blobs/sha256").mkdir(parents=True, exist_ok=True)
        (path / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
        self.refs: list[dict[str, Any]] = []

    def blob(self, data: bytes, media_type: str) -> dict[str, Any]:
        ref = sha256(data)
        (self.path / "blobs/sha256" / ref.partition(":")[2]).write_bytes(data)
        return {"mediaType": media_type, "digest": ref, "size": len(data)}

    def image(self, layers: list[list[Entry]], *, compression: str = "gzip",
              config: dict[str, Any] | None = None, arch: str = "amd64",
              raw_layers: list[bytes] | None = None, base: bytes | None = None
              ) -> dict[str, Any]:
        """Write an image's blobs; returns its manifest's descriptor (with platform). ``base``:
        an uncompressed layer below the others (a root file system to run)."""
        tars = ([base] if base is not None else []) + [tar_bytes(entries) for entries in layers]
        tars += list(raw_layers or [])
        descriptors = [self.blob(compress(t, compression),
                                 OCI_LAYER + SUFFIX[compression]) for t in tars]
        image_config = {"architecture": arch, "os": "linux", "config": config or {},
                        "rootfs": {"type": "layers", "diff_ids": [sha256(t) for t in tars]}}
        config_descriptor = self.blob(json.dumps(image_config).encode(),
                                      "application/vnd.oci.image.config.v1+json")
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config_descriptor,
                    "layers": descriptors}
        descriptor = self.blob(json.dumps(manifest).encode(), OCI_MANIFEST)
        descriptor["platform"] = {"architecture": arch, "os": "linux"}
        return descriptor

    def tag(self, tag: str, descriptor: dict[str, Any]) -> None:
        self.refs.append({**descriptor,
                          "annotations": {"org.opencontainers.image.ref.name": tag}})
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": self.refs}
        (self.path / "index.json").write_text(json.dumps(index))

    def index(self, manifests: list[dict[str, Any]]) -> dict[str, Any]:
        """A multi-platform index blob of ``manifests``; returns its descriptor."""
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
        return self.blob(json.dumps(index).encode(), OCI_INDEX)


def tree_tar(root: Path) -> bytes:
    """An uncompressed layer (or a rootfs tarball) of the directory ``root``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(root, arcname=".")
    return buffer.getvalue()


def publish(server: Registry, work: Path, name: str, base: bytes,
            layers: list[list[Entry]] | None = None, config: dict[str, Any] | None = None) -> str:
    """Push an image of ``base`` (a root file system's layer) and ``layers`` to ``server`` as
    ``HOST/img/NAME:1``, through an OCI layout under ``work``; its reference."""
    layout = Layout(work / f"layout-{name}")
    layout.tag("1", layout.image(layers or [], config=config, base=base))
    ref = f"{server.host}/img/{name}:1"
    push(layout, "1", ref)
    return ref


def skopeo(*args: str) -> None:
    result = subprocess.run(["skopeo", "--insecure-policy", *args], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, f"skopeo {' '.join(args)}: {result.stderr}"


def push(layout: Layout, tag: str, dest: str, *flags: str) -> None:
    """``skopeo copy oci:LAYOUT:TAG docker://DEST`` (TLS checks off: the test's registry)."""
    skopeo("copy", "--dest-tls-verify=false", *flags, f"oci:{layout.path}:{tag}",
           f"docker://{dest}")


def manifest_digest(dest: str) -> str:
    result = subprocess.run(["skopeo", "inspect", "--tls-verify=false", "--raw",
                             f"docker://{dest}"], capture_output=True, timeout=60, check=True)
    return sha256(result.stdout)


def podman_save(work: Path, rootfs_tar: Path, name: str, archive: Path) -> None:
    """``podman import`` a rootfs tarball, then ``podman save`` it (a docker-archive), with a
    storage of its own (the host's podman storage stays untouched; its runroot must be short)."""
    runroot = Path(tempfile.mkdtemp(prefix="ctr-podman-"))
    podman = ["podman", "--root", str(work / "root"), "--runroot", str(runroot),
              *PODMAN_ISOLATION]
    try:
        for args in (["import", str(rootfs_tar), name], ["save", "-o", str(archive), name]):
            result = subprocess.run([*podman, *args], capture_output=True, text=True,
                                    timeout=120)
            assert result.returncode == 0, f"podman {args[0]}: {result.stderr}"
    finally:
        shutil.rmtree(runroot, ignore_errors=True)


_LIST_TREE = ("import json, os\n"
              "tree = {}\n"
              "for root, dirs, files in os.walk('.'):\n"
              "    for name in files:\n"
              "        path = os.path.join(root, name)[2:]\n"
              "        tree[path] = open(path, errors='replace').read() "
              "if os.path.isfile(path) else 'special'\n"
              "print(json.dumps(tree))\n")


def overlay_run(store_root: Path, lowerdir: str, work: Path, script: str) -> str:
    """Run the shell ``script`` in an overlay of ``lowerdir`` (relative to ``store_root``, as
    the runtime will mount it), in a private mount namespace: nothing is left mounted."""
    for sub in ("upper", "work", "merged"):
        (work / sub).mkdir(parents=True)
    command = (f"cd {store_root} && mount -t overlay overlay -o lowerdir={lowerdir},"
               f"upperdir={work}/upper,workdir={work}/work {work}/merged && "
               f"cd {work}/merged && {script}")
    result = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", command],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return result.stdout


def overlay_files(store_root: Path, lowerdir: str, work: Path) -> dict[str, str]:
    """Every file an overlay of the layers shows, with its text."""
    quoted = _LIST_TREE.replace("'", "'\\''")
    files: dict[str, str] = json.loads(overlay_run(store_root, lowerdir, work,
                                                   f"python3 -c '{quoted}'"))
    return files
