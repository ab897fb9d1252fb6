"""A client of one registry: the OCI distribution API (Docker Registry HTTP API v2).

It fetches manifests (negotiated through ``Accept``) and blobs, authenticates as the registry
asks (a ``Bearer`` token from the realm of its ``WWW-Authenticate`` challenge, per repository
scope, or ``Basic`` credentials), retries what a registry or network may fail transiently
(connection errors, 429, 5xx) with back-off, and resumes an interrupted blob with ``Range``
from the byte it got to. Errors carry the registry's own code and message
(``MANIFEST_UNKNOWN``, ``UNAUTHORIZED``), so a user reads why, not just a status.
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

from supervisor.images import challenge, manifest
from supervisor.images.auth import Credentials
from supervisor.images.digest import DigestError
from supervisor.images.transport import Response, Transport, TransportError

log = logging.getLogger(__name__)

_TRANSIENT = (429, 500, 502, 503, 504)
_NETWORK_ERRORS = (OSError, http.client.HTTPException)


class RegistryError(RuntimeError):
    """A request the registry refused or could not serve; ``status`` is its HTTP status."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class NotFoundError(RegistryError, LookupError):
    """No such repository, tag or blob (404)."""


class UnauthorizedError(RegistryError, PermissionError):
    """401/403: missing or wrong credentials, or no access to the repository."""


class Client:
    """The registry at ``host`` (``HOST[:PORT]``); shared by the threads of one pull."""

    def __init__(self, host: str, *, context: ssl.SSLContext, insecure: bool = False,
                 credentials: Credentials | None = None, retries: int = 5,
                 backoff: float = 0.25, timeout: float = 30) -> None:
        self.host = host
        self.credentials = credentials
        self.retries = retries
        self.backoff = backoff
        self.transport = Transport(host, insecure=insecure, context=context, timeout=timeout)
        self._tokens: dict[str, str] = {}  # scope -> Authorization header value
        self._lock = threading.Lock()

    # -- the API --------------------------------------------------------------------------

    def ping(self) -> None:
        """``GET /v2/`` with the credentials: how ``login`` checks them."""
        self._request("GET", "/v2/", scope="").body.read()

    def manifest(self, repository: str, selector: str) -> tuple[bytes, str]:
        """The manifest (or index) ``selector`` (a tag or digest) and its media type."""
        response = self._request("GET", f"/v2/{repository}/manifests/{selector}",
                                 scope=_pull_scope(repository),
                                 headers={"Accept": ", ".join(manifest.ACCEPT)},
                                 what=f"{self.host}/{repository}:{selector}")
        length = int(response.header("Content-Length") or 0)
        if length > manifest.MAX_SIZE:
            response.close()
            raise RegistryError(f"{self.host}/{repository}:{selector}: manifest of {length} "
                                f"bytes is over the {manifest.MAX_SIZE} byte limit")
        data = response.body.read(manifest.MAX_SIZE + 1)
        response.close()
        return data, response.header("Content-Type")

    def blob(self, repository: str, digest: str, limit: int) -> bytes:
        """A small blob (a config) read whole; more than ``limit`` bytes is refused."""
        response = self._blob_response(repository, digest, 0)
        data = response.body.read(limit + 1)
        response.close()
        return data

    def open_blob(self, repository: str, digest: str, size: int,
                  on_resume: Callable[[int], None] | None = None) -> BlobStream:
        """A stream of blob ``digest`` that resumes with ``Range`` where it broke off."""
        return BlobStream(self, repository, digest, size, on_resume)

    # -- requests, authentication, retries ------------------------------------------------

    def _blob_response(self, repository: str, digest: str, offset: int) -> Response:
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        return self._request("GET", f"/v2/{repository}/blobs/{digest}",
                             scope=_pull_scope(repository), headers=headers,
                             ok=(200, 206), what=f"{self.host}/{repository}@{digest}")

    def _request(self, method: str, path: str, *, scope: str,
                 headers: Mapping[str, str] | None = None, ok: tuple[int, ...] = (200,),
                 what: str = "") -> Response:
        what = what or f"{self.host}{path}"
        authenticated = False
        for attempt in range(self.retries + 1):
            sent = dict(headers or {})
            authorization = self._authorization(scope)
            if authorization:
                sent["Authorization"] = authorization
            try:
                response = self.transport.request(method, path, sent)
            except ssl.SSLError as e:
                raise TransportError(f"{what}: TLS: {e.reason or e} (for a registry with its "
                                     f"own CA, put it in certs.d/{self.host}/ca.crt)") from e
            except socket.gaierror as e:  # no such host: waiting will not make one
                raise TransportError(f"{what}: cannot resolve {self.host}: {e.strerror}") from e
            except _NETWORK_ERRORS as e:
                if attempt == self.retries:
                    raise TransportError(f"{what}: {_describe(e)}") from e
                self._sleep(attempt, f"{what}: {_describe(e)}")
                continue
            if response.status in ok:
                return response
            body = response.body.read(64 << 10)
            if response.status == 401 and not authenticated:
                authenticated = True
                self._authenticate(response, scope, what)
                continue
            if response.status in _TRANSIENT and attempt < self.retries:
                self._sleep(attempt, f"{what}: HTTP {response.status}")
                continue
            raise _error(what, response.status, body, self.credentials is not None)
        raise TransportError(f"{what}: giving up after {self.retries + 1} attempts")

    def _sleep(self, attempt: int, why: str) -> None:
        delay = self.backoff * (2 ** attempt)
        log.info("%s; retrying in %.2fs", why, delay)
        time.sleep(delay)

    def _authorization(self, scope: str) -> str | None:
        with self._lock:
            return self._tokens.get(scope) or self._tokens.get("*")

    def _authenticate(self, response: Response, scope: str, what: str) -> None:
        """Answer the 401's challenge: a token for ``scope``, or basic credentials."""
        challenges = challenge.parse(response.header("WWW-Authenticate"))
        schemes = {c.scheme: c for c in challenges}
        if "bearer" in schemes:
            params = schemes["bearer"].params
            token = self._token(params, params.get("scope") or scope, what)
            with self._lock:
                self._tokens[scope] = f"Bearer {token}"
            return
        if "basic" in schemes and self.credentials is not None:
            with self._lock:
                self._tokens["*"] = f"Basic {_basic(self.credentials)}"
            return
        raise _error(what, 401, b"", self.credentials is not None)

    def _token(self, params: dict[str, str], scope: str, what: str) -> str:
        realm = params.get("realm")
        if not realm:
            raise UnauthorizedError(f"{what}: Bearer challenge without a realm", 401)
        query = {k: v for k, v in (("service", params.get("service")), ("scope", scope)) if v}
        url = f"{realm}{'&' if '?' in realm else '?'}{urllib.parse.urlencode(query)}"
        headers = {}
        if self.credentials is not None:
            headers["Authorization"] = f"Basic {_basic(self.credentials)}"
        token_host = urllib.parse.urlsplit(url).netloc
        transport = self.transport if token_host == self.host else Transport(
            token_host, insecure=False, context=ssl.create_default_context())
        try:
            response = transport.request("GET", url, headers)
            body = response.body.read(1 << 20)
        except _NETWORK_ERRORS as e:
            raise TransportError(f"{what}: token from {realm}: {_describe(e)}") from e
        if response.status != 200:
            raise _error(f"{what}: token from {realm}", response.status, body,
                         self.credentials is not None)
        try:
            document = json.loads(body)
            token = document.get("token") or document.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise UnauthorizedError(f"{what}: the token server {realm} sent no token", 401)
        return token


class BlobStream:
    """A blob's bytes, in order, across as many connections as it takes.

    Reads past a broken connection reopen the blob with ``Range: bytes=OFFSET-`` (a registry
    that ignores it answers 200 with the whole blob: the part already had is skipped), up to
    the client's retry budget; the digest check is the caller's (a ``VerifyingReader``).
    """

    def __init__(self, client: Client, repository: str, digest: str, size: int,
                 on_resume: Callable[[int], None] | None) -> None:
        self._client = client
        self._repository = repository
        self._digest = digest
        self._size = size
        self._on_resume = on_resume
        self._response: Response | None = None
        self.offset = 0
        self.resumes = 0

    def read(self, size: int = -1, /) -> bytes:
        if self.offset >= self._size:
            return self._rest(size)
        attempt = 0
        while True:
            try:
                if self._response is None:
                    self._response = self._open()
                data = self._response.body.read(size)
            except (TransportError, *_NETWORK_ERRORS) as e:
                error: BaseException = e
            else:
                if data:
                    self.offset += len(data)
                    return data
                if self._response.body.length == 0:  # the registry's whole answer: too short
                    self.close()
                    raise DigestError(f"{self._client.host}/{self._repository}@{self._digest}: "
                                      f"truncated: the registry sent {self.offset} of "
                                      f"{self._size} bytes")
                error = ConnectionError(f"connection closed at byte {self.offset} of "
                                        f"{self._size}")
            self.close()
            if attempt == self._client.retries:
                raise TransportError(
                    f"{self._client.host}/{self._repository}@{self._digest}: interrupted at "
                    f"byte {self.offset} of {self._size}: {_describe(error)}") from error
            self._client._sleep(attempt, f"blob {self._digest}: {_describe(error)}")
            attempt += 1
            self.resumes += 1
            if self._on_resume is not None:
                self._on_resume(self.offset)

    def _rest(self, size: int) -> bytes:
        """Past the declared size: whatever more the server sends (the verifier refuses it)."""
        if self._response is None:
            return b""
        data = self._response.body.read(size if size > 0 else 1)
        if not data:
            self.close()
        return data

    def _open(self) -> Response:
        response = self._client._blob_response(self._repository, self._digest, self.offset)
        if self.offset and response.status == 200:
            skipped = 0
            while skipped < self.offset:
                chunk = response.body.read(min(1 << 20, self.offset - skipped))
                if not chunk:
                    raise ConnectionError("connection closed while skipping to the resume point")
                skipped += len(chunk)
        return response

    def close(self) -> None:
        if self._response is not None:
            self._response.close()
            self._response = None


def _pull_scope(repository: str) -> str:
    return f"repository:{repository}:pull"


def _basic(credentials: Credentials) -> str:
    return base64.b64encode(f"{credentials.username}:{credentials.password}".encode()).decode()


def _describe(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return text if isinstance(error, TransportError) else f"{type(error).__name__}: {text}"


def _error(what: str, status: int, body: bytes, had_credentials: bool) -> RegistryError:
    """The registry's reason (``errors[].code/message``) in one line."""
    reason = _reasons(body) or http.client.responses.get(status, "error")
    if status == 401:
        hint = ("wrong user name or password" if had_credentials
                else "authentication required; log in with ctrctl login")
        return UnauthorizedError(f"{what}: 401 unauthorized: {reason} ({hint})", status)
    if status == 403:
        return UnauthorizedError(f"{what}: 403 denied: {reason}", status)
    if status == 404:
        return NotFoundError(f"{what}: 404 not found: {reason}", status)
    return RegistryError(f"{what}: HTTP {status}: {reason}", status)


def _reasons(body: bytes) -> str:
    try:
        document: Any = json.loads(body)
        errors = document["errors"]
        return "; ".join(f"{e.get('message') or e.get('code')} ({e.get('code')})"
                         for e in errors if isinstance(e, dict))
    except (ValueError, TypeError, KeyError, AttributeError):
        return ""
