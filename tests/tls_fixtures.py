"""A throwaway PKI made with openssl for the TLS tests: a CA, ctrd's certificate for 127.0.0.1,
a client certificate it signed, and one signed by a CA ctrd does not trust."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
_CA_EXTENSIONS = ["-addext", "basicConstraints=critical,CA:TRUE",
                  "-addext", "keyUsage=critical,keyCertSign,cRLSign"]


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path  # signed by ``ca``
    client_key: Path
    stranger_cert: Path  # signed by a CA of its own
    stranger_key: Path


def _openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)


def _ca(directory: Path, name: str) -> tuple[Path, Path]:
    cert, key = directory / f"{name}.pem", directory / f"{name}-key.pem"
    _openssl("req", "-x509", *_KEY, "-keyout", key, "-out", cert, "-days", "1",
             "-subj", f"/CN={name}", *_CA_EXTENSIONS)
    return cert, key


def _signed(directory: Path, name: str, ca: tuple[Path, Path],
            extensions: str) -> tuple[Path, Path]:
    cert, key, request = (directory / f"{name}.pem", directory / f"{name}-key.pem",
                          directory / f"{name}.csr")
    ext = directory / f"{name}.ext"
    ext.write_text(extensions + "\n")
    _openssl("req", "-new", *_KEY, "-keyout", key, "-out", request, "-subj", f"/CN={name}")
    _openssl("x509", "-req", "-in", request, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial",
             "-out", cert, "-days", "1", "-extfile", ext)
    return cert, key


def make_pki(directory: Path) -> Pki:
    directory.mkdir(parents=True, exist_ok=True)
    ca = _ca(directory, "ca")
    server = _signed(directory, "ctrd", ca,
                     "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth")
    client = _signed(directory, "client", ca, "extendedKeyUsage=clientAuth")
    stranger = _signed(directory, "stranger", _ca(directory, "other-ca"),
                       "extendedKeyUsage=clientAuth")
    return Pki(ca[0], *server, *client, *stranger)
