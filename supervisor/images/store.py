"""The image store: content-addressed blobs, one unpacked directory per layer, image records.

Layout under ``DATA_DIR/store`` (0700; images are for containers, not for host users)::

    lock              flock: shared while anything is added or held, exclusive for rmi/prune
    images.json       the records: names -> manifest digest, config digest, diff ids
    images.lock       flock around a read-modify-write of images.json
    blobs/sha256/HEX  manifests, indexes and configs (layers are kept unpacked only)
    layers/HEX/       one per layer diff id (the uncompressed digest): diff/ is the tree,
                      info.json its size and short link
    l/SHORT           -> ../layers/HEX/diff: overlayfs takes all lower directories in one
                      mount option of at most a page, so the runtime names them ``l/SHORT``
                      relative to the store (docker's overlay2 does the same), which leaves
                      room for hundreds of layers
    locks/HEX         flock per layer: the same layer pulled twice at once is fetched once
    holds/CONTAINER   what a container uses (written by the runtime, see ``hold``)
    tmp/              work in progress; renamed into place when complete, so a reader never
                      sees half a layer and a killed writer leaves only tmp/ (prune empties it)

Holds: before a container's root is mounted, the runtime calls ``acquire(NAME, REF)``, which
finds the image and writes ``holds/NAME`` naming it, its config and its layers under the store's
shared lock (so no ``rmi`` or ``prune`` comes between finding and holding); at teardown it calls
``release(NAME)``. ``rmi`` refuses an image held by a container unless forced, and even then
``rmi -f`` and ``prune`` never delete a held layer, manifest or config: they go once the hold is
released and the next prune runs. A restarted ctrd finds what an adopted container runs with
through ``held(NAME)``, whatever became of the image's names meanwhile.
The legacy named images under ``DATA_DIR/images`` are not in this store; the runtime resolves
them first (a local image wins over a registry).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar, cast

from supervisor.images import digest, imageconfig, manifest, reference
from supervisor.images.digest import DigestError
from supervisor.images.imageconfig import ImageConfig
from supervisor.images.layers import Unpacked
from supervisor.images.locks import flock

T = TypeVar("T")
_LINK_CHARS = "abcdefghijklmnopqrstuvwxyz234567"
_LINK_LENGTH = 12


class ImageUnknownError(LookupError):
    """No image in the store by that name, digest or ID."""


class ImageInUseError(RuntimeError):
    """An image that containers hold, removed without ``force``."""


@dataclass(frozen=True)
class Layer:
    diff_id: str
    path: Path  # the unpacked tree
    link: str  # "l/SHORT": the same tree, relative to Store.root (for the lowerdir option)
    size: int  # bytes of file content


@dataclass(frozen=True)
class Record:
    """One entry of images.json."""

    digest: str  # of the manifest
    config: str  # digest of the config blob; docker's and podman's image ID
    diff_ids: tuple[str, ...]
    names: tuple[str, ...] = ()
    index: str | None = None  # digest of the index it was chosen from, if any
    added: float = 0.0

    @property
    def id(self) -> str:
        return self.config.partition(":")[2]

    def to_json(self) -> dict[str, Any]:
        return {"digest": self.digest, "config": self.config, "diff_ids": list(self.diff_ids),
                "names": list(self.names), "index": self.index, "added": self.added}

    @classmethod
    def from_json(cls, entry: dict[str, Any]) -> Record:
        return cls(entry["digest"], entry["config"], tuple(entry["diff_ids"]),
                   tuple(entry["names"]), entry.get("index"), entry.get("added", 0.0))


@dataclass(frozen=True)
class StoredImage:
    """An image ready to run: what the runtime needs to build a container's root."""

    record: Record
    manifest: manifest.Manifest
    config: ImageConfig
    layers: tuple[Layer, ...]  # bottom first, as in the manifest

    @property
    def size(self) -> int:
        return sum(layer.size for layer in self.layers)

    def lowerdir(self) -> str:
        """overlayfs's ``lowerdir=`` value, top layer first, relative to ``Store.root``: mount
        with that as the working directory (or join each with it for a short store path)."""
        return ":".join(layer.link for layer in reversed(self.layers))


@dataclass(frozen=True)
class Pruned:
    images: tuple[str, ...]  # IDs of the records removed
    layers: int
    bytes: int


class Store:
    """The store under ``data_dir`` (``/var/lib/ctr`` by default); cheap to make, so every
    caller (ctrd, each ctrctl) makes its own and the files coordinate them."""

    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / "store"

    # -- reading --------------------------------------------------------------------------

    def records(self) -> list[Record]:
        try:
            document = json.loads((self.root / "images.json").read_text())
        except FileNotFoundError:
            return []
        return [Record.from_json(entry) for entry in document["images"]]

    def find(self, text: str) -> Record | None:
        """The record ``text`` names: an ID (or a unique prefix of one, 4+ hex digits), a
        manifest digest, a full name, or a short name (``localhost/`` first, then any
        registry's image of that path and tag, as podman looks up local images)."""
        records = self.records()
        bare = text.removeprefix("sha256:")
        if len(bare) >= 4 and all(c in "0123456789abcdef" for c in bare):
            matches = [r for r in records if r.id.startswith(bare)
                       or r.digest == f"sha256:{bare}"]
            if len(matches) == 1:
                return matches[0]
        ref = reference.parse(text)
        candidates = [str(ref)] if not ref.is_short else [str(ref.qualify("localhost"))]
        for wanted in candidates:
            for record in records:
                if wanted in record.names:
                    return record
                if ref.digest and ref.digest in (record.digest, record.index) and any(
                        reference.parse(n).repository == ref.repository for n in record.names):
                    return record
        if ref.is_short:
            for record in records:
                for name in record.names:
                    other = reference.parse(name)
                    if _short_match(ref, other):
                        return record
        return None

    def lookup(self, text: str) -> Record:
        record = self.find(text)
        if record is None:
            raise ImageUnknownError(f"image {text!r} is not in the store {self.root}")
        return record

    def image(self, record: Record) -> StoredImage:
        """Everything the runtime needs of ``record``; fails if a layer went missing."""
        parsed = self._parsed(record.digest, manifest.parse)
        if not isinstance(parsed, manifest.Manifest):
            raise DigestError(f"image {record.id[:12]}: its manifest blob is an index")
        config = self._parsed(record.config, imageconfig.parse)
        layers = []
        for diff_id in record.diff_ids:
            layer = self.layer(diff_id)
            if layer is None:
                raise ImageUnknownError(f"image {record.id[:12]}: layer {diff_id} is missing "
                                        "from the store; pull the image again")
            layers.append(layer)
        return StoredImage(record, parsed, config, tuple(layers))

    def resolve(self, text: str) -> StoredImage:
        """The image named ``text``, ready for ``hold`` and the overlay mount."""
        return self.image(self.lookup(text))

    def layer(self, diff_id: str) -> Layer | None:
        known = _LAYERS.get((self.root, diff_id))
        if known is not None and os.path.lexists(self.root / known.link):
            return known  # removing a layer removes its link first; pulled again, it has another
        directory = self._layer_dir(diff_id)
        try:
            info = json.loads((directory / "info.json").read_text())
        except FileNotFoundError:
            return None
        layer = Layer(diff_id, directory / "diff", f"l/{info['link']}", info["size"])
        _remember(_LAYERS, (self.root, diff_id), layer)
        return layer

    def _parsed(self, ref: str, parse: Callable[[bytes], T]) -> T:
        """The blob ``ref`` as ``parse`` reads it; parsed once per process, since a blob's
        content is its digest's (a start of a 20-layer image through ctrd spent half its time
        in the store, parsing the manifest and reading every layer's info.json, before)."""
        key = (self.root, ref, parse)
        if key not in _PARSED:
            _remember(_PARSED, key, parse(self.read_blob(ref)))
        return cast(T, _PARSED[key])

    def read_blob(self, ref: str) -> bytes:
        try:
            data = self._blob_path(ref).read_bytes()
        except FileNotFoundError:
            raise ImageUnknownError(f"blob {ref} is not in the store {self.root}") from None
        return data

    def holders(self, record: Record) -> list[str]:
        """The containers that hold ``record``."""
        return sorted(name for name, held in self._holds().items()
                      if held["image"] == record.digest)

    # -- adding ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def adding(self) -> Iterator[None]:
        """Hold the store's lock shared while adding (a pull, a load): what is added before its
        record is written is not garbage to a concurrent prune, which waits."""
        self._prepare()
        with flock(self.root / "lock", shared=True):
            yield

    def put_blob(self, data: bytes, expected: str | None = None) -> str:
        """Store ``data`` (checked against ``expected`` when given); returns its digest."""
        ref = expected or digest.of(data)
        if expected:
            digest.check(data, expected, f"blob {expected}")
        path = self._blob_path(ref)
        if not path.exists():
            path.parent.mkdir(exist_ok=True)
            self._atomic_write(path, data)
        return ref

    def add_layer(self, diff_id: str, fill: Callable[[Path], Unpacked]) -> tuple[Layer, bool]:
        """Layer ``diff_id``, unpacked by ``fill(DIR)`` unless the store has it; True if
        ``fill`` ran. Concurrent callers for one layer wait for the first one's result."""
        existing = self.layer(diff_id)
        if existing is not None:
            return existing, False
        with flock(self.root / "locks" / digest.parse(diff_id)[1]):
            existing = self.layer(diff_id)
            if existing is not None:
                return existing, False
            with self._workdir() as work:
                unpacked = fill(work / "diff")
                if unpacked.diff_id != diff_id:
                    raise DigestError(f"layer {diff_id}: uncompressed content has digest "
                                      f"{unpacked.diff_id}")
                return self._commit(work, unpacked), True

    def add_new_layer(self, fill: Callable[[Path], Unpacked]) -> Layer:
        """A layer whose diff id is known only once unpacked (``import`` of a tarball)."""
        with self._workdir() as work:
            unpacked = fill(work / "diff")
            with flock(self.root / "locks" / digest.parse(unpacked.diff_id)[1]):
                existing = self.layer(unpacked.diff_id)
                return existing if existing is not None else self._commit(work, unpacked)

    def add_image(self, name: str | None, manifest_data: bytes, config_data: bytes,
                  index_data: bytes | None = None) -> Record:
        """Record an image whose layers are in the store; ``name`` moves to it from any image
        that had it (that one stays, untagged, until pruned)."""
        parsed = manifest.parse(manifest_data)
        if not isinstance(parsed, manifest.Manifest):
            raise DigestError("not an image manifest")
        config = imageconfig.parse(config_data)
        for diff_id in config.diff_ids:
            if self.layer(diff_id) is None:
                raise ImageUnknownError(f"layer {diff_id} is not in the store")
        record = Record(self.put_blob(manifest_data),
                        self.put_blob(config_data, parsed.config.digest), config.diff_ids,
                        names=(name,) if name else (),
                        index=self.put_blob(index_data) if index_data else None,
                        added=time.time())

        def update(records: list[Record]) -> list[Record]:
            result = []
            for other in records:
                names = tuple(n for n in other.names if n != name)
                if other.digest == record.digest:
                    record_names = names + record.names
                    result.append(replace(other, names=record_names,
                                          index=record.index or other.index))
                else:
                    result.append(replace(other, names=names))
            if not any(r.digest == record.digest for r in records):
                result.append(record)
            return result

        self._update(update)
        return self.lookup(record.digest)

    # -- holds ----------------------------------------------------------------------------

    def hold(self, container: str, image: StoredImage) -> None:
        """Mark ``image`` and its layers as used by ``container`` (before mounting them)."""
        with self.adding():
            self._hold(container, image)

    def acquire(self, container: str, text: str) -> StoredImage:
        """The image ``text`` names, held by ``container``: found and held under one shared
        lock, so a concurrent ``rmi``/``prune`` sees the hold or runs before the lookup."""
        with self.adding():
            image = self.resolve(text)
            self._hold(container, image)
            return image

    def _hold(self, container: str, image: StoredImage) -> None:
        """With the store's lock held shared."""
        self._atomic_write(self._hold_path(container), json.dumps(
            {"image": image.record.digest, "config": image.record.config,
             "layers": list(image.record.diff_ids)}).encode())

    def held(self, container: str) -> StoredImage | None:
        """The image ``container`` holds (for a container adopted after a restart), if any."""
        held = self._holds().get(container)
        if held is None:
            return None
        record = Record(held["image"], held["config"], tuple(held["layers"]))
        return self.image(record)

    def release(self, container: str) -> None:
        """Drop ``container``'s hold (after unmounting its root); nothing if it had none."""
        with contextlib.suppress(FileNotFoundError):
            self._hold_path(container).unlink()

    # -- removing -------------------------------------------------------------------------

    def remove(self, text: str, force: bool = False) -> tuple[str, bool]:
        """``rmi``: untag the name ``text`` or, when it is the last one (or ``text`` is an ID),
        delete the image and the layers no other image or container uses. Returns the
        record's ID and whether it was deleted (False: only untagged)."""
        with flock(self._prepare() / "lock"):
            record = self.lookup(text)
            holders = self.holders(record)
            if holders and not force:
                raise ImageInUseError(
                    f"image {text!r} is in use by container(s) {', '.join(holders)} (-f removes "
                    "it anyway; its layers stay until those containers are gone)")
            name = self._name_in(record, text)
            if name is not None and len(record.names) > 1:
                names = tuple(n for n in record.names if n != name)
                self._update(lambda rs: [replace(r, names=names) if r.digest == record.digest
                                         else r for r in rs])
                return record.id, False
            self._update(lambda rs: [r for r in rs if r.digest != record.digest])
            self._collect()
            return record.id, True

    def prune(self) -> Pruned:
        """Remove untagged images no container holds, then every layer and blob that nothing
        refers to, and what killed writers left in tmp/."""
        with flock(self._prepare() / "lock"):
            held = {h["image"] for h in self._holds().values()}
            dangling = [r for r in self.records() if not r.names and r.digest not in held]
            gone = {r.digest for r in dangling}
            self._update(lambda rs: [r for r in rs if r.digest not in gone])
            layers, size = self._collect()
            return Pruned(tuple(r.id for r in dangling), layers, size)

    # -- internals ------------------------------------------------------------------------

    def _prepare(self) -> Path:
        """The store's directories, made if missing (checked by one stat once made here)."""
        if self.root in _PREPARED and (self.root / "holds").is_dir():
            return self.root
        if not self.root.is_dir():
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        for sub in ("blobs/sha256", "layers", "l", "locks", "tmp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        (self.root / "holds").mkdir(mode=0o700, exist_ok=True)
        _PREPARED.add(self.root)
        return self.root

    def _collect(self) -> tuple[int, int]:
        """Delete unreferenced layers and blobs; called with the lock held exclusively."""
        records = self.records()
        holds = self._holds()
        wanted_layers = {d for r in records for d in r.diff_ids}
        wanted_layers |= {d for h in holds.values() for d in h["layers"]}
        wanted_blobs = {b for r in records for b in (r.digest, r.config, r.index) if b}
        wanted_blobs |= {b for h in holds.values() for b in (h["image"], h.get("config")) if b}
        count = size = 0
        for directory in (self.root / "layers").iterdir():
            diff_id = f"sha256:{directory.name}"
            if diff_id in wanted_layers:
                continue
            layer = self.layer(diff_id)
            if layer is not None:
                size += layer.size
                (self.root / layer.link).unlink(missing_ok=True)
            count += 1
            self._discard(directory)
        for blob in (self.root / "blobs/sha256").iterdir():
            if f"sha256:{blob.name}" not in wanted_blobs:
                blob.unlink()
        for link in (self.root / "l").iterdir():
            if not link.exists():  # dangling: its layer is gone or was never committed
                link.unlink()
        for path in (self.root / "tmp").iterdir():
            self._discard(path)
        for lock in (self.root / "locks").iterdir():
            lock.unlink()  # safe: no writer runs while the store lock is held exclusively
        return count, size

    def _discard(self, path: Path) -> None:
        """Rename out of sight first, so the tree vanishes at once even if removal is slow."""
        if path.parent != self.root / "tmp":
            gone = self.root / "tmp" / f"gone-{secrets.token_hex(8)}"
            path.rename(gone)
            path = gone
        shutil.rmtree(path, ignore_errors=True)

    @contextlib.contextmanager
    def _workdir(self) -> Iterator[Path]:
        self._prepare()
        work = Path(tempfile.mkdtemp(dir=self.root / "tmp"))
        (work / "diff").mkdir(mode=0o755)
        try:
            yield work
        finally:
            if work.exists():
                shutil.rmtree(work, ignore_errors=True)

    def _commit(self, work: Path, unpacked: Unpacked) -> Layer:
        """Move a complete tree into place: the short link first (dangling until the rename),
        then one rename, so the layer exists whole or not at all."""
        target = self._layer_dir(unpacked.diff_id)
        while True:
            link = "".join(secrets.choice(_LINK_CHARS) for _ in range(_LINK_LENGTH))
            try:
                os.symlink(f"../layers/{target.name}/diff", self.root / "l" / link)
                break
            except FileExistsError:
                continue
        (work / "info.json").write_text(json.dumps({"size": unpacked.size, "link": link}))
        work.chmod(0o755)
        os.rename(work, target)
        return Layer(unpacked.diff_id, target / "diff", f"l/{link}", unpacked.size)

    def _update(self, change: Callable[[list[Record]], list[Record]]) -> None:
        """Replace the records by ``change(records)`` under their lock, by an atomic rename."""
        with flock(self._prepare() / "images.lock"):
            records = change(self.records())
            document = {"version": 1, "images": [r.to_json() for r in records]}
            self._atomic_write(self.root / "images.json", json.dumps(document, indent=1).encode())

    def _atomic_write(self, path: Path, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def _holds(self) -> dict[str, dict[str, Any]]:
        holds: dict[str, dict[str, Any]] = {}
        for path in (self.root / "holds").glob("[!.]*"):
            with contextlib.suppress(FileNotFoundError):
                holds[path.name] = json.loads(path.read_text())
        return holds

    def _hold_path(self, container: str) -> Path:
        if not container or "/" in container or container.startswith("."):
            raise ValueError(f"{container!r} is not a container name")
        return self.root / "holds" / container

    def _layer_dir(self, diff_id: str) -> Path:
        return self.root / "layers" / digest.parse(diff_id)[1]

    def _blob_path(self, ref: str) -> Path:
        algorithm, hexdigest = digest.parse(ref)
        return self.root / "blobs" / algorithm / hexdigest

    @staticmethod
    def _name_in(record: Record, text: str) -> str | None:
        """The name of ``record`` that ``text`` means, if it is a name rather than an ID."""
        try:
            ref = reference.parse(text)
        except ValueError:
            return None
        for name in record.names:
            if name == str(ref) or (ref.is_short and _short_match(ref, reference.parse(name))):
                return name
        return None


# What a long-running process (ctrd) has read of the store already; small, bounded anyway
_CACHED = 4096
_PARSED: dict[tuple[Path, str, Callable[[bytes], Any]], Any] = {}
_LAYERS: dict[tuple[Path, str], Layer] = {}
_PREPARED: set[Path] = set()


def _remember(cache: dict[Any, Any], key: Any, value: Any) -> None:
    if len(cache) >= _CACHED:
        cache.clear()
    cache[key] = value


def _short_match(short: reference.Reference, name: reference.Reference) -> bool:
    """Whether local image ``name`` answers to the short name ``short``."""
    return (name.path == short.path or name.path.endswith(f"/{short.path}")) and (
        name.tag == short.tag) and (short.digest is None or short.digest == name.digest)

