"""Registry credentials where podman keeps them, in containers-auth.json(5)'s format.

Read in podman's order: ``--authfile`` (or ``$REGISTRY_AUTH_FILE``) alone when given, else
``/run/containers/UID/auth.json`` (where rootful podman logs in),
``~/.config/containers/auth.json``, ``~/.docker/config.json``. Each file maps a key (a host,
or a host and repository path, the longest match winning) to ``{"auth": base64("user:pass")}``.
``ctrctl login`` writes the first file, 0600, through an atomic rename, so a concurrent reader
sees the old or the new file, never half of one.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The key docker writes for Docker Hub
_DOCKER_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "registry-1.docker.io")


class AuthFileError(ValueError):
    """An auth file that cannot be read or holds a malformed entry (named in the message)."""


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    def __repr__(self) -> str:  # never print a password into a log or traceback
        return f"Credentials(username={self.username!r}, password=***)"


def write_path(authfile: Path | None = None, environ: Mapping[str, str] = os.environ) -> Path:
    """The file ``login`` writes and ``logout`` edits."""
    if authfile is not None:
        return authfile
    if environ.get("REGISTRY_AUTH_FILE"):
        return Path(environ["REGISTRY_AUTH_FILE"])
    return Path(f"/run/containers/{os.getuid()}/auth.json")


def read_paths(authfile: Path | None = None,
               environ: Mapping[str, str] = os.environ) -> list[Path]:
    """The files a lookup reads, first match winning."""
    if authfile is not None or environ.get("REGISTRY_AUTH_FILE"):
        return [write_path(authfile, environ)]
    home = Path(environ.get("HOME") or Path.home())
    return [write_path(None, environ), home / ".config/containers/auth.json",
            home / ".docker/config.json"]


def lookup(host: str, repository: str = "", authfile: Path | None = None,
           environ: Mapping[str, str] = os.environ) -> Credentials | None:
    """Credentials for ``host`` (``HOST[:PORT]``) and optionally ``repository`` (its path)."""
    wanted = [f"{host}/{repository}"] if repository else []
    parts = repository.split("/")
    wanted += [f"{host}/{'/'.join(parts[:i])}" for i in range(len(parts) - 1, 0, -1)]
    wanted.append(host)
    if host == "docker.io":
        wanted.extend(_DOCKER_HUB_KEYS)
    for path in read_paths(authfile, environ):
        auths = _auths(path)
        for key in wanted:
            for candidate in (key, f"https://{key}", f"http://{key}"):
                if candidate in auths:
                    return _decode(path, candidate, auths[candidate])
    return None


def store(host: str, credentials: Credentials, authfile: Path | None = None,
          environ: Mapping[str, str] = os.environ) -> Path:
    """Save ``credentials`` for ``host``; returns the file written."""
    token = base64.b64encode(f"{credentials.username}:{credentials.password}".encode()).decode()
    return _update(write_path(authfile, environ), host, {"auth": token})


def remove(host: str, authfile: Path | None = None,
           environ: Mapping[str, str] = os.environ) -> bool:
    """Forget ``host``'s credentials; False if there were none."""
    path = write_path(authfile, environ)
    if host not in _auths(path):
        return False
    _update(path, host, None)
    return True


def _update(path: Path, host: str, entry: dict[str, str] | None) -> Path:
    document = _document(path)
    auths = document.setdefault("auths", {})
    if entry is None:
        auths.pop(host, None)
    else:
        auths[host] = entry
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".auth.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(document, out, indent=1)
            out.write("\n")
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path


def _document(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise AuthFileError(f"{path}: {e}") from e
    if not isinstance(document, dict) or not isinstance(document.get("auths", {}), dict):
        raise AuthFileError(f"{path}: not an auth file (want {{\"auths\": {{...}}}})")
    return document


def _auths(path: Path) -> dict[str, Any]:
    auths: dict[str, Any] = _document(path).get("auths", {})
    return auths


def _decode(path: Path, key: str, entry: Any) -> Credentials | None:
    if not isinstance(entry, dict):
        raise AuthFileError(f"{path}: auths.{key}: not an object")
    if "auth" not in entry:
        return None  # an entry kept for a credential helper, which ctr does not run
    try:
        user, sep, password = base64.b64decode(entry["auth"], validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError, TypeError) as e:
        raise AuthFileError(f"{path}: auths.{key}.auth: not base64 of USER:PASSWORD") from e
    if not sep:
        raise AuthFileError(f"{path}: auths.{key}.auth: not base64 of USER:PASSWORD")
    return Credentials(user, password)
