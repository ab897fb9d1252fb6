"""``load`` and ``import``: images from files instead of a registry.

``load`` takes what ``docker save`` / ``podman save`` write (a docker-archive: ``manifest.json``
naming each image's config, tags and layer tars), an oci-archive (a tar of an OCI image layout),
or an OCI image layout directory (``index.json`` and ``blobs/``), as ``podman load`` does. Every
blob is checked against its digest as it is read and every layer against the config's diff id;
the archive is read in place, members streamed, never extracted whole. ``import`` makes a
one-layer image of a plain root-filesystem tarball, named ``localhost/NAME`` when the name is
short, as ``podman import`` does.
"""

from __future__ import annotations

import json
import tarfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Protocol, cast

from supervisor.images import digest, imageconfig, layers, manifest, reference
from supervisor.images.digest import Readable, VerifyingReader
from supervisor.images.manifest import Descriptor, Platform
from supervisor.images.progress import Progress, ProgressCallback, ignore
from supervisor.images.store import Record, Store

_MAX_JSON = 8 << 20
_NAME_ANNOTATIONS = ("io.containerd.image.name", "org.opencontainers.image.ref.name")


class ArchiveError(ValueError):
    """A file that is no image archive, or one with a missing or inconsistent member."""


class _Files(Protocol):
    def open(self, name: str) -> BinaryIO: ...

    def exists(self, name: str) -> bool: ...


class _Directory:
    def __init__(self, root: Path) -> None:
        self.root = root

    def open(self, name: str) -> BinaryIO:
        path = self._path(name)
        try:
            return path.open("rb")
        except OSError as e:
            raise ArchiveError(f"{self.root}: {name}: {e.strerror}") from e

    def exists(self, name: str) -> bool:
        return self._path(name).is_file()

    def _path(self, name: str) -> Path:
        if name.startswith("/") or ".." in name.split("/"):
            raise ArchiveError(f"{self.root}: refusing member name {name!r}")
        return self.root / name


class _Tar:
    def __init__(self, tar: tarfile.TarFile, path: Path) -> None:
        self.path = path
        self._tar = tar
        self._members = {m.name.removeprefix("./"): m for m in tar.getmembers()}

    def open(self, name: str) -> BinaryIO:
        member = self._members.get(name.removeprefix("./"))
        data = self._tar.extractfile(member) if member is not None else None
        if data is None:
            raise ArchiveError(f"{self.path}: no file {name!r} in the archive")
        return cast(BinaryIO, data)

    def exists(self, name: str) -> bool:
        return name.removeprefix("./") in self._members


@contextmanager
def _files(path: Path) -> Iterator[_Files]:
    if path.is_dir():
        yield _Directory(path)
        return
    try:
        tar = tarfile.open(path, "r:*")  # noqa: SIM115 (closed by the with below)
    except (OSError, tarfile.TarError) as e:
        raise ArchiveError(f"{path}: not an image archive or layout: {e}") from e
    with tar:
        yield _Tar(tar, path)


def load(path: Path, store: Store, platform: Platform | None = None,
         progress: ProgressCallback = ignore) -> list[Record]:
    """Every image in the archive or layout at ``path``, added to ``store``."""
    with _files(path) as files, store.adding():
        if files.exists("manifest.json"):
            return _DockerArchive(files, store, progress).load(path)
        if files.exists("index.json"):
            return _Layout(files, store, progress, platform or Platform.of_host()).load(path)
    raise ArchiveError(f"{path}: neither a docker-archive (manifest.json) nor an OCI layout "
                       "(index.json)")


def import_tarball(path: Path, name: str, store: Store,
                   progress: ProgressCallback = ignore) -> Record:
    """A one-layer image of the root-filesystem tarball ``path``, named ``name``."""
    ref = reference.parse(name)
    if ref.is_short:
        ref = ref.qualify("localhost")
    size = path.stat().st_size
    with path.open("rb") as source, store.adding():
        raw = VerifyingReader(source, what=str(path))
        head = source.read(4)
        source.seek(0)
        progress(Progress(str(path), size, 0, "downloading"))
        layer = store.add_new_layer(lambda dest: layers.unpack(raw, dest, str(path)))
        progress(Progress(str(path), size, size, "done"))
        blob = Descriptor(layers.media_type(head), raw.actual, raw.count)
        platform = Platform.of_host()
        config = {"architecture": platform.architecture, "os": platform.os,
                  "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  "config": {}, "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]}}
        return _add(store, str(ref), config, [blob])


def _add(store: Store, name: str | None, config: dict[str, Any],
         layer_descriptors: list[Descriptor]) -> Record:
    """Record an image whose manifest this code writes (archives without one, imports)."""
    config_data = json.dumps(config).encode()
    document = {
        "schemaVersion": 2, "mediaType": manifest.OCI_MANIFEST,
        "config": Descriptor(manifest.OCI_CONFIG, digest.of(config_data),
                             len(config_data)).to_json(),
        "layers": [d.to_json() for d in layer_descriptors],
    }
    return store.add_image(name, json.dumps(document).encode(), config_data)


def _json(files: _Files, name: str, what: str) -> Any:
    with files.open(name) as stream:
        data = stream.read(_MAX_JSON + 1)
    if len(data) > _MAX_JSON:
        raise ArchiveError(f"{what}: {name} is over {_MAX_JSON} bytes")
    try:
        return json.loads(data)
    except ValueError as e:
        raise ArchiveError(f"{what}: {name}: not JSON: {e}") from e


class _DockerArchive:
    def __init__(self, files: _Files, store: Store, progress: ProgressCallback) -> None:
        self.files = files
        self.store = store
        self.progress = progress

    def load(self, path: Path) -> list[Record]:
        entries = _json(self.files, "manifest.json", str(path))
        if not isinstance(entries, list) or not entries:
            raise ArchiveError(f"{path}: manifest.json: want a list of images")
        return [self._image(path, i, entry) for i, entry in enumerate(entries)]

    def _image(self, path: Path, i: int, entry: Any) -> Record:
        where = f"{path}: manifest.json[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str) or not (
                isinstance(entry.get("Layers"), list)):
            raise ArchiveError(f"{where}: want Config and Layers")
        with self.files.open(entry["Config"]) as stream:
            config_data = stream.read(_MAX_JSON + 1)
        config = imageconfig.parse(config_data)
        if len(config.diff_ids) != len(entry["Layers"]):
            raise ArchiveError(f"{where}: {len(entry['Layers'])} layers, but the config has "
                               f"{len(config.diff_ids)} diff ids")
        descriptors = [self._layer(f"{where}: {name}", name, diff_id)
                       for name, diff_id in zip(entry["Layers"], config.diff_ids, strict=True)]
        tags = entry.get("RepoTags") or []
        names = [str(_docker_name(tag)) for tag in tags]
        document = json.loads(config_data)
        record = _add(self.store, names[0] if names else None, document, descriptors)
        for name in names[1:]:
            record = _add(self.store, name, document, descriptors)
        return record

    def _layer(self, what: str, name: str, diff_id: str) -> Descriptor:
        with self.files.open(name) as stream:
            raw = VerifyingReader(stream, what=what)
            head = stream.read(4)
            stream.seek(0)
            self.progress(Progress(diff_id, 0, 0, "downloading"))
            _, added = self.store.add_layer(diff_id, lambda d: layers.unpack(raw, d, what))
            self.progress(Progress(diff_id, raw.count, raw.count, "done" if added else "exists"))
            if not added or raw.count == 0:
                raw.drain()
            kind = layers.media_type(head)
        return Descriptor(kind, diff_id if kind == layers.TAR else raw.actual, raw.count)


class _Layout:
    def __init__(self, files: _Files, store: Store, progress: ProgressCallback,
                 platform: Platform) -> None:
        self.files = files
        self.store = store
        self.progress = progress
        self.platform = platform

    def load(self, path: Path) -> list[Record]:
        try:
            index = manifest.parse(self._blob_bytes_of("index.json"))
        except manifest.ManifestError as e:
            raise ArchiveError(f"{path}: index.json: {e}") from e
        if not isinstance(index, manifest.Index) or not index.manifests:
            raise ArchiveError(f"{path}: index.json lists no images")
        names = self._names(path)
        return [self._image(path, d, names.get(d.digest)) for d in index.manifests]

    def _names(self, path: Path) -> dict[str, str]:
        """Manifest digest -> the full name its annotations give, when they give one."""
        document = _json(self.files, "index.json", str(path))
        names = {}
        for entry in document.get("manifests", []):
            for key in _NAME_ANNOTATIONS:
                value = (entry.get("annotations") or {}).get(key, "")
                if "/" in value or ":" in value:
                    try:
                        names[entry["digest"]] = str(_docker_name(value))
                    except reference.ReferenceError:
                        continue
                    break
        return names

    def _image(self, path: Path, descriptor: Descriptor, name: str | None) -> Record:
        data = self._blob(descriptor)
        parsed = manifest.parse(data, descriptor.media_type)
        index_data = None
        if isinstance(parsed, manifest.Index):
            index_data = data
            descriptor = parsed.select(self.platform)
            data = self._blob(descriptor)
            parsed = manifest.parse(data, descriptor.media_type)
            if not isinstance(parsed, manifest.Manifest):
                raise ArchiveError(f"{path}: {descriptor.digest}: nested index")
        config_data = self._blob(parsed.config)
        config = imageconfig.parse(config_data)
        if len(config.diff_ids) != len(parsed.layers):
            raise ArchiveError(f"{path}: {descriptor.digest}: {len(parsed.layers)} layers, but "
                               f"the config has {len(config.diff_ids)} diff ids")
        for layer, diff_id in zip(parsed.layers, config.diff_ids, strict=True):
            self._layer(path, layer, diff_id)
        return self.store.add_image(name, data, config_data, index_data)

    def _layer(self, path: Path, layer: Descriptor, diff_id: str) -> None:
        what = f"{path}: layer {layer.digest}"
        self.progress(Progress(layer.digest, layer.size, 0, "downloading"))

        def fill(dest: Path) -> layers.Unpacked:
            with self.files.open(_blob_name(layer.digest)) as stream:
                verified = VerifyingReader(cast(Readable, stream), layer.digest, layer.size,
                                           what)
                unpacked = layers.unpack(verified, dest, what)
                verified.verify()
                return unpacked

        _, added = self.store.add_layer(diff_id, fill)
        self.progress(Progress(layer.digest, layer.size, layer.size,
                               "done" if added else "exists"))

    def _blob(self, descriptor: Descriptor) -> bytes:
        if descriptor.size > _MAX_JSON:
            raise ArchiveError(f"blob {descriptor.digest}: {descriptor.size} bytes is too big "
                               "for a manifest or config")
        data = self._blob_bytes_of(_blob_name(descriptor.digest))
        digest.check(data, descriptor.digest, f"blob {descriptor.digest}")
        return data

    def _blob_bytes_of(self, name: str) -> bytes:
        with self.files.open(name) as stream:
            return stream.read(_MAX_JSON + 1)


def _blob_name(ref: str) -> str:
    algorithm, hexdigest = digest.parse(ref)
    return f"blobs/{algorithm}/{hexdigest}"


def _docker_name(text: str) -> reference.Reference:
    """A name as docker writes it into archives: short names are Docker Hub's."""
    ref = reference.parse(text)
    return ref.qualify(reference.DOCKER_HUB) if ref.is_short else ref

