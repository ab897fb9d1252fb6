"""The lock on the API's TCP listener: a bearer token, in a file ctrd writes when it is missing,
and optionally TLS with client certificates.

The Unix socket is guarded by its mode (0660, as docker's socket): whoever may open it is
trusted. A TCP port has no such guard, since every local user reaches 127.0.0.1, so there a
request must carry the token; TLS keeps the token and the answers off the wire, and a client CA
requires a certificate besides, as docker's ``--tlsverify`` does. Everything here is read once,
when ctrd starts, so a bad file stops ctrd at once with its name rather than at a first client.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from supervisor.config.daemon import DaemonConfig
from supervisor.model.errors import Invalid
from supervisor.model.token import new_token, read_token

TOKEN_MODE = 0o600
_LOOSE = stat.S_IRWXO | stat.S_IWGRP  # others may read or write it, or its group may write it


@dataclass(frozen=True)
class TcpListener:
    host: str
    port: int
    token: str
    tls: ssl.SSLContext | None = None


def tcp_listener(config: DaemonConfig) -> TcpListener | None:
    """The TCP listener ``config`` asks for, with its token and TLS, or None for none."""
    if config.api_listen is None:
        return None
    host, port = config.api_listen
    return TcpListener(host, port, ensure_token(config.token_file), server_tls(config))


def ensure_token(path: Path) -> str:
    """The token in ``path``; a random one is written first if the file is missing.

    The new file appears whole or not at all (written aside, then linked into place), so a
    crash leaves no empty token behind, and two ctrds starting at once agree on one token.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        aside = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, TOKEN_MODE)
        try:
            with os.fdopen(fd, "w") as file:
                file.write(new_token() + "\n")
            with contextlib.suppress(FileExistsError):
                os.link(aside, path)
        finally:
            aside.unlink()
    _check_private(path)
    return read_token(path)


def _check_private(path: Path) -> None:
    """Refuse a token file others could read, or one another user could change (sshd's
    StrictModes): the token is worth what its file keeps secret."""
    info = path.stat()
    if info.st_uid != os.geteuid():
        raise Invalid(f"API token file {path}: owned by uid {info.st_uid}, not by ctrd's "
                      f"({os.geteuid()})")
    if info.st_mode & _LOOSE:
        raise Invalid(f"API token file {path}: mode {stat.S_IMODE(info.st_mode):04o} lets "
                      f"others at it (chmod 600 {path})")


def _load(what: str, load: Callable[[], object]) -> None:
    """Run ``load``; an unreadable or unusable file becomes an error naming the setting."""
    try:
        load()
    except ssl.SSLError as e:
        raise Invalid(f"{what}: {e.reason or e}") from None
    except OSError as e:
        raise Invalid(f"{what}: {e.strerror or e}") from None


def server_tls(config: DaemonConfig) -> ssl.SSLContext | None:
    """TLS for the listener, or None without a certificate.

    A bare server context: it trusts no CA but the configured client CA (the system's CAs
    would let any publicly signed certificate in as a client).
    """
    cert, key, client_ca = config.api_tls_cert, config.api_tls_key, config.api_tls_client_ca
    if cert is None or key is None:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    _load(f"api_tls_cert {cert} with api_tls_key {key}",
          lambda: context.load_cert_chain(cert, key))
    if client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        _load(f"api_tls_client_ca {client_ca}",
              lambda: context.load_verify_locations(cafile=client_ca))
    return context
