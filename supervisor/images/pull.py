"""``pull``: a reference, through registries.conf, credentials and certs.d, into the store.

The steps, as podman's copy takes them: resolve the name to candidate sources (short names
through aliases and search registries, then mirrors before the location), fetch and negotiate the
manifest, pick the platform's manifest from an index, fetch the config, then every layer the
store lacks, concurrently: each streams from the registry through a digest check and the
decompressor straight into the unpacker (see ``layers``), so download, verification and
unpacking overlap and no compressed copy touches the disk. The image is recorded only when all
of it is in the store. Synchronous by design: ctrctl calls it directly, ctrd from a worker thread.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from supervisor.images import (
    auth,
    certs,
    digest,
    imageconfig,
    layers,
    manifest,
    reference,
    registries,
)
from supervisor.images.digest import Readable, VerifyingReader
from supervisor.images.manifest import Descriptor, Platform
from supervisor.images.progress import Progress, ProgressCallback, ignore
from supervisor.images.reference import Reference
from supervisor.images.registry import BlobStream, Client, NotFoundError, RegistryError
from supervisor.images.stats import PullStats
from supervisor.images.store import Store, StoredImage
from supervisor.images.transport import TransportError

log = logging.getLogger(__name__)

MAX_CONFIG = 8 << 20


@dataclass(frozen=True)
class PullOptions:
    platform: Platform | None = None  # default: the host's
    tls_verify: bool | None = None  # None: as registries.conf says; False: --tls-verify=false
    authfile: Path | None = None
    cert_dir: Path | None = None
    registries: registries.RegistriesConf | None = None  # default: registries.load()
    workers: int = 4
    retries: int = 5
    backoff: float = 0.25


@dataclass(frozen=True)
class PullResult:
    image: StoredImage
    name: str  # the name it is stored under
    source: str  # where it was fetched from (a mirror, say)
    downloaded: int  # bytes
    fetched: int  # layers downloaded
    reused: int  # layers the store already had
    resumes: int  # interrupted blobs resumed with Range
    seconds: float


def pull(text: str, store: Store, options: PullOptions | None = None,
         progress: ProgressCallback | None = None, stats: PullStats | None = None) -> PullResult:
    """Pull ``text`` into ``store``; raises with the registries' reasons if it cannot."""
    options = options or PullOptions()
    started = time.monotonic()
    job = _Pull(store, options, progress or ignore)
    try:
        result = job.run(text, started)
    except BaseException:
        if stats is not None:
            stats.record(False, job.downloaded, time.monotonic() - started)
        raise
    if stats is not None:
        stats.record(True, result.downloaded, result.seconds)
    return result


class _Pull:
    def __init__(self, store: Store, options: PullOptions, progress: ProgressCallback) -> None:
        self.store = store
        self.options = options
        self.progress = progress
        self.downloaded = 0
        self.resumes = 0
        self._lock = threading.Lock()

    def run(self, text: str, started: float) -> PullResult:
        conf = self.options.registries or registries.load()
        ref = reference.parse(text)
        client, source, data, media_type, name = self._find(conf, ref)
        parsed = manifest.parse(data, media_type)
        if source.digest:
            digest.check(data, source.digest, f"manifest {source}")
        index_data = None
        if isinstance(parsed, manifest.Index):
            index_data = data
            wanted = self.options.platform or Platform.of_host()
            chosen = parsed.select(wanted)
            data, media_type = client.manifest(source.path, chosen.digest)
            digest.check(data, chosen.digest, f"manifest {source.repository}@{chosen.digest}")
            parsed = manifest.parse(data, media_type)
            if not isinstance(parsed, manifest.Manifest):
                raise manifest.ManifestError(f"{source}: the index for {wanted} names another "
                                             "index")
        config_data = client.blob(source.path, parsed.config.digest, MAX_CONFIG)
        digest.check(config_data, parsed.config.digest, f"config of {source}")
        config = imageconfig.parse(config_data)
        if len(config.diff_ids) != len(parsed.layers):
            raise manifest.ManifestError(
                f"{source}: the manifest has {len(parsed.layers)} layers, the config "
                f"{len(config.diff_ids)} diff ids")
        self._check_platform(source, config)
        with self.store.adding():
            fetched = self._layers(client, source, parsed.layers, config.diff_ids)
            record = self.store.add_image(name, data, config_data, index_data)
            image = self.store.image(record)
        return PullResult(image, name, str(source), self.downloaded, fetched,
                          len(parsed.layers) - fetched, self.resumes,
                          time.monotonic() - started)

    def _find(self, conf: registries.RegistriesConf, ref: Reference
              ) -> tuple[Client, Reference, bytes, str, str]:
        """The first source that has ``ref``'s manifest; the error says what each answered."""
        failures: list[BaseException] = []
        for candidate in conf.candidates(ref):
            for source in conf.sources(candidate):
                client = self._client(source)
                try:
                    data, media_type = client.manifest(source.ref.path, source.ref.selector)
                except (RegistryError, TransportError, certs.CertificateError) as e:
                    log.info("%s: %s", source.ref, e)
                    failures.append(e)
                    continue
                return client, source.ref, data, media_type, str(candidate)
        if len(failures) == 1:
            raise failures[0]
        reasons = "; ".join(str(f) for f in failures)
        if all(isinstance(f, NotFoundError) for f in failures):
            raise NotFoundError(f"{ref}: not found in any registry: {reasons}", 404)
        raise RegistryError(f"{ref}: cannot pull: {reasons}")

    def _client(self, source: registries.Source) -> Client:
        host = source.ref.domain
        insecure = source.insecure if self.options.tls_verify is None else (
            not self.options.tls_verify)
        credentials = auth.lookup(host, source.ref.path, self.options.authfile)
        return Client(host, context=certs.context(host, not insecure, self.options.cert_dir),
                      insecure=insecure, credentials=credentials, retries=self.options.retries,
                      backoff=self.options.backoff)

    def _check_platform(self, source: Reference, config: imageconfig.ImageConfig) -> None:
        wanted = self.options.platform or Platform.of_host()
        if (config.os, config.architecture) != (wanted.os, wanted.architecture):
            log.warning("%s: image is for %s/%s, not %s", source, config.os,
                        config.architecture, wanted)

    def _layers(self, client: Client, source: Reference, descriptors: tuple[Descriptor, ...],
                diff_ids: tuple[str, ...]) -> int:
        """Fetch what the store lacks, ``workers`` at a time; the number fetched."""
        for layer in descriptors:
            self.progress(Progress(layer.digest, layer.size, 0, "waiting"))
        with concurrent.futures.ThreadPoolExecutor(self.options.workers) as pool:
            futures = [pool.submit(self._layer, client, source, d, diff_id)
                       for d, diff_id in zip(descriptors, diff_ids, strict=True)]
            try:
                return sum(future.result() for future in futures)
            except BaseException:
                pool.shutdown(cancel_futures=True)
                raise

    def _layer(self, client: Client, source: Reference, layer: Descriptor,
               diff_id: str) -> bool:
        def fill(dest: Path) -> layers.Unpacked:
            stream = client.open_blob(source.path, layer.digest, layer.size,
                                      lambda offset: self._resumed(layer, offset))
            try:
                counted = _Counted(stream, lambda n: self._downloaded(layer, n, stream))
                verified = VerifyingReader(counted, layer.digest, layer.size,
                                           f"layer {layer.digest} of {source}")
                unpacked = layers.unpack(verified, dest, f"layer {layer.digest} of {source}")
                verified.verify()
                return unpacked
            finally:
                stream.close()

        _, fetched = self.store.add_layer(diff_id, fill)
        self.progress(Progress(layer.digest, layer.size, layer.size,
                               "done" if fetched else "exists"))
        return fetched

    def _downloaded(self, layer: Descriptor, count: int, stream: BlobStream) -> None:
        with self._lock:
            self.downloaded += count
        self.progress(Progress(layer.digest, layer.size, stream.offset, "downloading"))

    def _resumed(self, layer: Descriptor, offset: int) -> None:
        with self._lock:
            self.resumes += 1
        self.progress(Progress(layer.digest, layer.size, offset, "resuming"))


class _Counted:
    """Passes reads through, telling ``report`` how many bytes each brought."""

    def __init__(self, source: Readable, report: Callable[[int], None]) -> None:
        self._source = source
        self._report = report

    def read(self, size: int = -1, /) -> bytes:
        data = self._source.read(size)
        if data:
            self._report(len(data))
        return data
