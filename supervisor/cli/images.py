"""``ctrctl pull``, ``images``, ``image inspect|prune``, ``rmi``, ``load``, ``import``,
``login`` and ``logout``: the image verbs, which work on the store directly (no ctrd needed; the
store's locks make them safe next to a running ctrd), with podman's flags and output.

A pull or load shows per-layer progress bars (bytes, rate) on a terminal, one line per layer
otherwise, nothing with ``-q``; the image ID goes to stdout, everything else to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from supervisor.cli import show
from supervisor.images import auth, reference, registries
from supervisor.images.progress import Progress, ProgressCallback, ignore
from supervisor.images.store import Record, Store

if TYPE_CHECKING:
    from supervisor.images.pull import PullOptions

_REDRAW = 0.1  # seconds between two redraws of the bars


def _bytes(count: float) -> str:
    units = ("B", "KiB", "MiB", "GiB")
    power = 0
    while count >= 1024 and power < len(units) - 1:
        count /= 1024
        power += 1
    return f"{count:.0f} B" if power == 0 else f"{count:.1f} {units[power]}"


class _Display:
    """Progress events -> bars redrawn in place (a terminal) or a line per finished layer."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.terminal = out.isatty()
        self.layers: dict[str, Progress] = {}
        self.started: dict[str, float] = {}
        self.drawn = 0
        self.last = 0.0
        self.lock = threading.Lock()

    def __call__(self, event: Progress) -> None:
        with self.lock:
            self.layers[event.layer] = event
            self.started.setdefault(event.layer, time.monotonic())
            if not self.terminal:
                if event.state in ("done", "exists"):
                    print(self._line(event), file=self.out, flush=True)
                return
            now = time.monotonic()
            if event.state in ("done", "exists", "waiting") or now - self.last >= _REDRAW:
                self.last = now
                self._draw()

    def _line(self, event: Progress) -> str:
        name = event.layer.removeprefix("sha256:")[:12]
        if event.state == "exists":
            return f"{name}: already in the store"
        elapsed = max(time.monotonic() - self.started[event.layer], 1e-6)
        rate = f"{_bytes(event.done / elapsed)}/s"
        if event.state == "done":
            return f"{name}: done, {_bytes(event.done)} ({rate})"
        if event.state == "waiting":
            return f"{name}: waiting"
        fraction = event.done / event.total if event.total else 0.0
        bar = ("=" * int(fraction * 30)).ljust(30)
        return (f"{name}: [{bar}] {_bytes(event.done)} / {_bytes(event.total)} {rate}"
                f"{' (resuming)' if event.state == 'resuming' else ''}")

    def _draw(self) -> None:
        text = "".join(f"\x1b[2K{self._line(e)}\n" for e in self.layers.values())
        self.out.write(f"\x1b[{self.drawn}F" if self.drawn else "")
        self.out.write(text)
        self.out.flush()
        self.drawn = len(self.layers)


def _progress(args: argparse.Namespace) -> ProgressCallback:
    return ignore if args.quiet else _Display(sys.stderr)


def _store(args: argparse.Namespace) -> Store:
    return Store(Path(args.data_dir))


def _pull(args: argparse.Namespace) -> int:
    from supervisor.images import pull  # the registry client: only for the verbs using it
    from supervisor.images.manifest import Platform

    options = pull.PullOptions(
        platform=Platform.parse(args.platform) if args.platform else None,
        tls_verify=args.tls_verify, authfile=args.authfile, cert_dir=args.cert_dir)
    print(pull_with_progress(args.ref, _store(args), options, args.quiet))
    return 0


def pull_with_progress(ref: str, store: Store, options: PullOptions | None,
                       quiet: bool) -> str:
    """Pull ``ref`` as ``ctrctl pull`` shows it on stderr (also before ``ctrctl run``); the
    image's ID."""
    from supervisor.images import pull

    if not quiet:
        print(f"Pulling {ref}", file=sys.stderr)
    result = pull.pull(ref, store, options, ignore if quiet else _Display(sys.stderr))
    if not quiet:
        print(f"{result.name}: {result.fetched} layers fetched, {result.reused} already "
              f"there, {_bytes(result.downloaded)} in {result.seconds:.1f}s", file=sys.stderr)
    return result.image.record.id


def _summary(store: Store, record: Record) -> dict[str, Any]:
    sizes = [layer.size for d in record.diff_ids if (layer := store.layer(d)) is not None]
    return {"id": record.id, "names": list(record.names), "digest": record.digest,
            "created": record.added, "size": sum(sizes)}


def _images(args: argparse.Namespace) -> int:
    store = _store(args)
    rows = [_summary(store, record) for record in store.records()]
    rows.sort(key=lambda r: r["created"], reverse=True)
    if args.output == "json":
        print(json.dumps(rows, indent=2))
        return 0
    table = [("REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE")]
    for row in rows:
        for name in row["names"] or ["<none>:<none>"]:
            ref = reference.parse(name) if name != "<none>:<none>" else None
            table.append((ref.repository if ref else "<none>",
                          (ref.tag or ref.digest or "") if ref else "<none>",
                          row["id"][:12], show.age(row["created"]), _bytes(row["size"])))
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    for r in table:
        print("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return 0


def _inspect(args: argparse.Namespace) -> int:
    store = _store(args)
    images = []
    for ref in args.refs:
        image = store.resolve(ref)
        record = image.record
        images.append({
            "Id": record.id, "Digest": record.digest, "Index": record.index,
            "Names": list(record.names), "Size": image.size,
            "Config": image.config.to_json(),
            "Layers": [{"DiffID": layer.diff_id, "Size": layer.size, "Path": str(layer.path),
                        "Blob": blob.digest, "MediaType": blob.media_type,
                        "BlobSize": blob.size}
                       for layer, blob in zip(image.layers, image.manifest.layers, strict=True)],
            "Containers": store.holders(record),
        })
    print(json.dumps(images, indent=2))
    return 0


def _prune(args: argparse.Namespace) -> int:
    pruned = _store(args).prune()
    for image_id in pruned.images:
        print(image_id)
    print(f"removed {len(pruned.images)} images and {pruned.layers} layers, "
          f"{_bytes(pruned.bytes)}", file=sys.stderr)
    return 0


def _rmi(args: argparse.Namespace) -> int:
    store = _store(args)
    for ref in args.refs:
        image_id, deleted = store.remove(ref, force=args.force)
        print(f"Deleted: {image_id}" if deleted else f"Untagged: {ref}")
    return 0


def _load(args: argparse.Namespace) -> int:
    from supervisor.images import archive

    for record in archive.load(args.input, _store(args), progress=_progress(args)):
        print(f"Loaded image: {', '.join(record.names) or record.config}")
    return 0


def _import(args: argparse.Namespace) -> int:
    from supervisor.images import archive

    record = archive.import_tarball(args.tarball, args.ref, _store(args), _progress(args))
    print(record.id)
    return 0


def _registry_host(text: str) -> str:
    """``https://host:5000/v2/`` -> ``host:5000``: what podman accepts for login/logout."""
    return text.split("://", 1)[-1].split("/", 1)[0]


def _login(args: argparse.Namespace) -> int:
    from supervisor.images import certs
    from supervisor.images.registry import Client

    password = sys.stdin.readline().rstrip("\n")
    if not args.username or not password:
        raise ValueError("login: a user name (-u) and a password are needed")
    host = _registry_host(args.registry)
    verify = args.tls_verify if args.tls_verify is not None else not registries.load().insecure(
        host)
    credentials = auth.Credentials(args.username, password)
    Client(host, context=certs.context(host, verify, args.cert_dir), insecure=not verify,
           credentials=credentials, retries=1).ping()
    auth.store(host, credentials, args.authfile)
    print("Login Succeeded!")
    return 0


def _logout(args: argparse.Namespace) -> int:
    host = _registry_host(args.registry)
    if not auth.remove(host, args.authfile):
        raise LookupError(f"not logged into {host} (in {auth.write_path(args.authfile)})")
    print(f"Removed login credentials for {host}")
    return 0


def _boolean(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"want true or false, got {text!r}")


def _registry_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tls-verify", type=_boolean, metavar="BOOL",
                   help="require HTTPS and a verified certificate (default: true, or as "
                   "registries.conf says); false also allows plain HTTP")
    p.add_argument("--authfile", type=Path, help="credentials file (default: "
                   "$REGISTRY_AUTH_FILE, /run/containers/0/auth.json, ~/.docker/config.json)")
    p.add_argument("--cert-dir", type=Path, metavar="DIR",
                   help="CA (*.crt) and client (*.cert/*.key) files (default: "
                   "/etc/containers/certs.d/HOST:PORT)")


def configure(verb: str, p: argparse.ArgumentParser) -> None:
    if verb == "pull":
        p.add_argument("ref", metavar="REF")
        p.add_argument("--platform", metavar="OS/ARCH[/VARIANT]",
                       help="the image to pick from a multi-platform index (default: the host's)")
        p.add_argument("-q", "--quiet", action="store_true", help="print only the image ID")
        _registry_flags(p)
        p.set_defaults(func=_pull)
    elif verb == "images":
        p.add_argument("-o", "--output", choices=["text", "json"], default="text")
        p.set_defaults(func=_images)
    elif verb == "image":
        sub = p.add_subparsers(dest="action", required=True, metavar="inspect|prune")
        inspect = sub.add_parser("inspect", help="digest, config, layers and sizes, as JSON")
        inspect.add_argument("refs", nargs="+", metavar="REF")
        inspect.set_defaults(func=_inspect)
        sub.add_parser("prune", help="remove untagged images and unused layers").set_defaults(
            func=_prune)
    elif verb == "rmi":
        p.add_argument("refs", nargs="+", metavar="REF")
        p.add_argument("-f", "--force", action="store_true",
                       help="remove it even if containers use it (their layers stay)")
        p.set_defaults(func=_rmi)
    elif verb == "load":
        p.add_argument("-i", "--input", type=Path, required=True, metavar="FILE",
                       help="a docker-archive, an oci-archive or an OCI layout directory")
        p.add_argument("-q", "--quiet", action="store_true")
        p.set_defaults(func=_load)
    elif verb == "import":
        p.add_argument("tarball", type=Path, metavar="TARBALL")
        p.add_argument("ref", metavar="REF")
        p.add_argument("-q", "--quiet", action="store_true")
        p.set_defaults(func=_import)
    elif verb == "login":
        p.add_argument("registry", metavar="REGISTRY")
        p.add_argument("-u", "--username", required=True)
        p.add_argument("--password-stdin", action="store_true", required=True,
                       help="read the password from standard input")
        _registry_flags(p)
        p.set_defaults(func=_login)
    else:
        p.add_argument("registry", metavar="REGISTRY")
        p.add_argument("--authfile", type=Path)
        p.set_defaults(func=_logout)
