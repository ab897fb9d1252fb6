"""TLS settings per registry from ``certs.d``, as containers-certs.d(5) lays them out.

``/etc/containers/certs.d/HOST:PORT/`` (then docker's ``/etc/docker/certs.d/``) holds CA roots
(``*.crt``, added to the system's), and client certificates (``NAME.cert`` with ``NAME.key``).
``--cert-dir DIR`` (podman's flag) names that per-host directory directly; ``$CTR_CERTS_D``
replaces the roots that are searched, so tests use a directory of their own.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from pathlib import Path

ROOTS = (Path("/etc/containers/certs.d"), Path("/etc/docker/certs.d"))


class CertificateError(ValueError):
    """A certs.d directory with an unusable file (a key without certificate, a bad PEM)."""


def host_dir(host: str, cert_dir: Path | None = None,
             environ: Mapping[str, str] = os.environ) -> Path | None:
    """The directory holding ``host``'s certificates, if there is one."""
    if cert_dir is not None:
        return cert_dir
    roots = [Path(environ["CTR_CERTS_D"])] if environ.get("CTR_CERTS_D") else list(ROOTS)
    for root in roots:
        if (root / host).is_dir():
            return root / host
    return None


def context(host: str, verify: bool = True, cert_dir: Path | None = None,
            environ: Mapping[str, str] = os.environ) -> ssl.SSLContext:
    """An SSL context for ``host`` (``HOST[:PORT]``): system roots plus its certs.d files."""
    ctx = ssl.create_default_context()
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    directory = host_dir(host, cert_dir, environ)
    if directory is None:
        return ctx
    try:
        for ca in sorted(directory.glob("*.crt")):
            if verify:
                ctx.load_verify_locations(cafile=ca)
        for cert in sorted(directory.glob("*.cert")):
            key = cert.with_suffix(".key")
            if not key.is_file():
                raise CertificateError(f"{cert}: client certificate without its key {key.name}")
            ctx.load_cert_chain(cert, key)
        for key in sorted(directory.glob("*.key")):
            if not key.with_suffix(".cert").is_file():
                raise CertificateError(f"{key}: client key without its certificate "
                                       f"{key.with_suffix('.cert').name}")
    except (ssl.SSLError, OSError) as e:
        raise CertificateError(f"{directory}: {e}") from e
    return ctx
