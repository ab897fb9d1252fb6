"""Manifests and indexes: OCI image manifest and index, Docker schema 2 manifest and list.

One typed, frozen form for the four formats (they differ only in media types). Docker schema 1
is refused with a message saying so: it has no config blob, its layers have no stable digests,
and registries stopped serving it years ago. A manifest larger than ``MAX_SIZE`` (containerd's
limit) is refused before it is parsed.
"""

from __future__ import annotations

import json
import platform as host
from dataclasses import dataclass
from typing import Any

from supervisor.images import digest

MAX_SIZE = 4 << 20

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v1+prettyjws")
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
MANIFESTS = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEXES = (OCI_INDEX, DOCKER_LIST)
# What a pull asks for, in order of preference (the Accept header)
ACCEPT = (OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST)
LAYERS = (
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.diff.tar",
)

_ARCHES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386",
           "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}


class ManifestError(ValueError):
    """A manifest or index that ctr cannot use; the message names the bad member."""


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    @classmethod
    def parse(cls, text: str) -> Platform:
        """``OS/ARCH[/VARIANT]``, as ``--platform`` takes it."""
        parts = text.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise ManifestError(f"platform {text!r}: want OS/ARCH[/VARIANT], e.g. linux/amd64")
        return cls(*parts)

    @classmethod
    def of_host(cls) -> Platform:
        machine = host.machine()
        arch = _ARCHES.get(machine, machine)
        return cls("linux", arch, "v7" if machine == "armv7l" else "")

    def matches(self, other: Platform) -> bool:
        if (self.os, self.architecture) != (other.os, other.architecture):
            return False
        if not self.variant or self.variant == other.variant:
            return True
        return self.architecture == "arm64" and {self.variant, other.variant} <= {"", "v8"}

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: Platform | None = None

    def to_json(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


@dataclass(frozen=True)
class Manifest:
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]


@dataclass(frozen=True)
class Index:
    media_type: str
    manifests: tuple[Descriptor, ...]

    def select(self, wanted: Platform) -> Descriptor:
        """The manifest for ``wanted``; the error lists the platforms there are."""
        for candidate in self.manifests:
            if candidate.platform is not None and wanted.matches(candidate.platform):
                return candidate
        offered = ", ".join(str(d.platform) for d in self.manifests if d.platform) or "none"
        raise ManifestError(f"no image for platform {wanted} in the index (it has: {offered})")


def parse(data: bytes, media_type: str | None = None) -> Manifest | Index:
    """Parse a manifest or index; ``media_type`` is the registry's Content-Type, if any."""
    if len(data) > MAX_SIZE:
        raise ManifestError(f"manifest of {len(data)} bytes is over the {MAX_SIZE} byte limit")
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, ValueError) as e:
        raise ManifestError(f"manifest is not JSON: {e}") from e
    if not isinstance(document, dict):
        raise ManifestError("manifest is not a JSON object")
    kind = document.get("mediaType") or _base_type(media_type) or _guess(document)
    if kind in DOCKER_SCHEMA1 or document.get("schemaVersion") == 1:
        raise ManifestError("Docker schema 1 manifests are not supported (deprecated; push the "
                            "image again with a current client, as schema 2 or OCI)")
    if document.get("schemaVersion") != 2:
        raise ManifestError(f"schemaVersion {document.get('schemaVersion')!r}: want 2")
    if kind in INDEXES:
        entries = _list(document, "manifests")
        return Index(kind, tuple(_descriptor(e, f"manifests[{i}]") for i, e in
                                 enumerate(entries)))
    if kind in MANIFESTS:
        layers = tuple(_descriptor(e, f"layers[{i}]") for i, e in
                       enumerate(_list(document, "layers")))
        for i, layer in enumerate(layers):
            if layer.media_type not in LAYERS:
                raise ManifestError(f"layers[{i}]: media type {layer.media_type!r} is not a "
                                    f"layer ctr can unpack ({', '.join(LAYERS)})")
        config = _descriptor(document.get("config"), "config")
        if config.media_type not in (OCI_CONFIG, DOCKER_CONFIG):
            raise ManifestError(f"config: media type {config.media_type!r} is not an image "
                                "config (an artifact, not a container image?)")
        return Manifest(kind, config, layers)
    raise ManifestError(f"unsupported manifest media type {kind!r}")


def _base_type(content_type: str | None) -> str | None:
    return content_type.split(";")[0].strip() if content_type else None


def _guess(document: dict[str, Any]) -> str:
    """OCI allows leaving mediaType out; the members tell manifest from index."""
    return OCI_INDEX if "manifests" in document else OCI_MANIFEST


def _list(document: dict[str, Any], key: str) -> list[Any]:
    value = document.get(key)
    if not isinstance(value, list):
        raise ManifestError(f"{key}: missing or not a list")
    return value


def _descriptor(entry: Any, where: str) -> Descriptor:
    if not isinstance(entry, dict):
        raise ManifestError(f"{where}: not an object")
    media_type, size, ref = entry.get("mediaType"), entry.get("size"), entry.get("digest")
    if not isinstance(media_type, str):
        raise ManifestError(f"{where}.mediaType: missing or not a string")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ManifestError(f"{where}.size: missing or not a byte count")
    if not isinstance(ref, str):
        raise ManifestError(f"{where}.digest: missing or not a string")
    try:
        digest.parse(ref)
    except digest.DigestError as e:
        raise ManifestError(f"{where}.digest: {e}") from e
    return Descriptor(media_type, ref, size, _platform(entry.get("platform"), where))


def _platform(entry: Any, where: str) -> Platform | None:
    if entry is None:
        return None
    if not isinstance(entry, dict) or not isinstance(entry.get("os"), str) or not isinstance(
            entry.get("architecture"), str):
        raise ManifestError(f"{where}.platform: want an object with os and architecture")
    variant = entry.get("variant", "")
    if not isinstance(variant, str):
        raise ManifestError(f"{where}.platform.variant: not a string")
    return Platform(entry["os"], entry["architecture"], variant)
