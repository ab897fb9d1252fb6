"""HTTP for the registry client: the standard library's ``http.client``, one connection per
thread and host, redirects followed, plain HTTP only where a registry is marked insecure.

Why ``http.client`` and threads rather than aiohttp, urllib3 or requests: a pull runs in
``ctrctl`` directly and in a worker thread of ctrd, so a blocking API suits both callers; the
hot path is a socket read into a hash and a decompressor, which the standard library does at
the speed of its C code; and importing it costs nothing (aiohttp alone takes 100 ms to import,
and ``ctrctl images`` must not pay that). Layers download concurrently on a few threads, each
with its own keep-alive connection, as podman's copy does.

Redirects go to blob storage (a CDN, S3) with the ``Range`` header kept and the registry's
``Authorization`` dropped once the host changes, as docker and containers/image do.
"""

from __future__ import annotations

import http.client
import ssl
import threading
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

_REDIRECTS = (301, 302, 303, 307, 308)
_MAX_REDIRECTS = 5
USER_AGENT = "ctr/0.1 (OCI image client)"


class TransportError(OSError):
    """A registry that cannot be reached or talked to (connection, TLS, redirects)."""


@dataclass(frozen=True)
class Response:
    """A response whose body the caller reads to its end (or closes on error)."""

    status: int
    headers: http.client.HTTPMessage
    body: http.client.HTTPResponse
    url: str

    def header(self, name: str) -> str:
        return self.headers.get(name, "")

    def close(self) -> None:
        self.body.close()


class Transport:
    """HTTP(S) to one registry host; safe to share between threads."""

    def __init__(self, host: str, *, insecure: bool, context: ssl.SSLContext,
                 timeout: float = 30) -> None:
        self.host = host
        self.insecure = insecure
        self._context = context
        self._timeout = timeout
        self._scheme: str | None = None if insecure else "https"
        self._lock = threading.Lock()
        self._local = threading.local()

    @property
    def base(self) -> str:
        return f"{self._scheme or 'https'}://{self.host}"

    def request(self, method: str, target: str, headers: Mapping[str, str]) -> Response:
        """``method`` on ``target`` (a path on this host, or an absolute URL), redirects
        followed; the body of the returned response is unread."""
        if self._scheme is None:
            self._choose_scheme(target, headers)
        url = target if "://" in target else f"{self._scheme}://{self.host}{target}"
        sent = dict(headers)
        for _ in range(_MAX_REDIRECTS + 1):
            response = self._send(method, url, sent)
            if response.status not in _REDIRECTS:
                return response
            location = response.header("Location")
            response.body.read()
            if not location:
                raise TransportError(f"{url}: redirect without a Location")
            next_url = urllib.parse.urljoin(url, location)
            if urllib.parse.urlsplit(next_url).netloc != urllib.parse.urlsplit(url).netloc:
                sent.pop("Authorization", None)
            url = next_url
            if response.status == 303:
                method = "GET"
        raise TransportError(f"{target}: more than {_MAX_REDIRECTS} redirects")

    def _choose_scheme(self, target: str, headers: Mapping[str, str]) -> None:
        """An insecure registry: HTTPS without verification if it speaks TLS, else HTTP."""
        with self._lock:
            if self._scheme is not None:
                return
            try:
                self._send("GET", f"https://{self.host}/v2/", {}).body.read()
                self._scheme = "https"
            except (ssl.SSLError, ConnectionResetError, http.client.BadStatusLine,
                    http.client.RemoteDisconnected):
                self._drop("https", self.host)
                self._scheme = "http"

    def _connection(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
        pool: dict[tuple[str, str], http.client.HTTPConnection] = self._local.__dict__.setdefault(
            "pool", {})
        conn = pool.get((scheme, netloc))
        if conn is None:
            if scheme == "https":
                context = self._context if netloc == self.host else ssl.create_default_context()
                conn = http.client.HTTPSConnection(netloc, timeout=self._timeout,
                                                   context=context)
            else:
                conn = http.client.HTTPConnection(netloc, timeout=self._timeout)
            pool[(scheme, netloc)] = conn
        return conn

    def _drop(self, scheme: str, netloc: str) -> None:
        pool = self._local.__dict__.get("pool", {})
        conn = pool.pop((scheme, netloc), None)
        if conn is not None:
            conn.close()

    def _send(self, method: str, url: str, headers: Mapping[str, str]) -> Response:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise TransportError(f"{url}: unsupported URL scheme")
        if parts.scheme == "http" and parts.netloc == self.host and not self.insecure:
            raise TransportError(f"{url}: refusing plain HTTP to a secure registry")
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        all_headers = {"User-Agent": USER_AGENT, **headers}
        try:
            return self._exchange(method, url, path or "/", all_headers)
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            # a kept-alive connection the server had closed meanwhile: once more, on a new one
            return self._exchange(method, url, path or "/", all_headers)

    def _exchange(self, method: str, url: str, path: str,
                  headers: Mapping[str, str]) -> Response:
        parts = urllib.parse.urlsplit(url)
        conn = self._connection(parts.scheme, parts.netloc)
        try:
            conn.request(method, path, headers=headers)
            body = conn.getresponse()
        except BaseException:
            self._drop(parts.scheme, parts.netloc)
            raise
        return Response(body.status, body.headers, body, url)
