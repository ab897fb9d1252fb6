"""The API behind a lock: the TCP listener wants the bearer token (and, with TLS, a client
certificate), the Unix socket its file mode; the token's file; ``ctrctl --host``."""

from __future__ import annotations

import grp
import http.client
import os
import ssl
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from supervisor.api import server
from supervisor.api.auth import add_open_routes
from supervisor.api.tcp import TcpListener, ensure_token, server_tls
from supervisor.config.daemon import DaemonConfig
from supervisor.model.errors import Invalid
from tests.conftest import REPO
from tests.tls_fixtures import Pki, make_pki
from tests.unit.test_api import TOKEN, Api, FakeBackend, Response, served, tcp_address

UNAUTHORIZED = {"error": "unauthorized", "detail": None}

open_routes = web.RouteTableDef()


@open_routes.get("/ping")
async def ping(request: web.Request) -> web.Response:
    return web.Response(text="pong")


def with_open_routes(app: web.Application) -> None:
    """An interface of its own, as the graders' is: its routes want no token."""
    add_open_routes(app, open_routes)


@pytest.fixture
def tcp_api(tmp_path: Path) -> Iterator[tuple[Api, tuple[str, int]]]:
    backend = FakeBackend(tmp_path)
    with served(backend, tmp_path / "ctrd.sock", TcpListener("127.0.0.1", 0, TOKEN),
                [with_open_routes]) as runner:
        yield Api(backend, tmp_path / "ctrd.sock"), tcp_address(runner)


def over_tcp(address: tuple[str, int], method: str, path: str,
             headers: dict[str, str] | None = None, body: bytes | None = None) -> Response:
    connection = http.client.HTTPConnection(*address, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return Response(response.status, response.headers, response.read())
    finally:
        connection.close()


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer wrong-token-but-long-enough"},
    {"Authorization": f"Bearer {TOKEN}x"},
    {"Authorization": f"Basic {TOKEN}"},
    {"Authorization": "Bearer"},
    {"Authorization": TOKEN},
])
@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/v1/containers"), ("POST", "/v1/containers/web/stop"), ("DELETE", "/v1/containers"),
    ("GET", "/v1/openapi.json"), ("GET", "/v1/nothing"), ("PUT", "/v1/containers/web"),
    ("GET", "/"),
])
def test_tcp_without_the_token_is_401_and_says_nothing_more(
        tcp_api: tuple[Api, tuple[str, int]], headers: dict[str, str], method: str,
        path: str) -> None:
    api, address = tcp_api
    response = over_tcp(address, method, path, headers)
    assert response.status == 401
    assert response.json == UNAUTHORIZED  # no route, method or container named
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="ctrd"'
    assert api.backend.views["web"].state == "running" and "web" in api.backend.views


def test_tcp_with_the_token_is_served(tcp_api: tuple[Api, tuple[str, int]]) -> None:
    api, address = tcp_api
    for scheme in ("Bearer", "bearer"):
        response = over_tcp(address, "GET", "/v1/containers/web",
                            {"Authorization": f"{scheme} {TOKEN}"})
        assert response.status == 200 and response.json["name"] == "web"
    stopped = over_tcp(address, "POST", "/v1/containers/web/stop",
                       {"Authorization": f"Bearer {TOKEN}"})
    assert stopped.status == 200 and api.backend.views["web"].state == "stopped"
    # with the token, the usual errors again
    missing = over_tcp(address, "GET", "/v1/nothing", {"Authorization": f"Bearer {TOKEN}"})
    assert missing.status == 404 and missing.json["detail"]["path"] == "/v1/nothing"


def test_the_unix_socket_needs_no_token(tcp_api: tuple[Api, tuple[str, int]]) -> None:
    api, _ = tcp_api
    assert api.request("GET", "/v1/containers").status == 200


def test_open_routes_answer_over_tcp_without_the_token(
        tcp_api: tuple[Api, tuple[str, int]]) -> None:
    _, address = tcp_api
    response = over_tcp(address, "GET", "/ping")
    assert (response.status, response.body) == (200, b"pong")
    assert over_tcp(address, "POST", "/ping").status == 401  # not a route of theirs


def test_the_socket_takes_the_ctr_group_when_there_is_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mine = grp.getgrgid(os.getegid()).gr_name
    monkeypatch.setattr(server, "SOCKET_GROUP", mine)
    with served(FakeBackend(tmp_path), tmp_path / "ctrd.sock"):
        info = (tmp_path / "ctrd.sock").stat()
        assert (info.st_gid, stat.S_IMODE(info.st_mode)) == (os.getegid(), 0o660)
    monkeypatch.setattr(server, "SOCKET_GROUP", "no-such-group-here")
    with served(FakeBackend(tmp_path), tmp_path / "ctrd.sock"):  # no group: the mode alone
        assert stat.S_IMODE((tmp_path / "ctrd.sock").stat().st_mode) == 0o660


# -- the token's file -----------------------------------------------------------------------------

def test_a_missing_token_file_is_written_private_and_then_reused(tmp_path: Path) -> None:
    path = tmp_path / "run" / "api-token"
    token = ensure_token(path)
    assert len(token) >= 32 and path.read_text() == token + "\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ensure_token(path) == token  # the next start keeps it
    assert ensure_token(tmp_path / "other") != token
    assert sorted(p.name for p in path.parent.iterdir()) == ["api-token"]  # nothing aside


@pytest.mark.parametrize(("mode", "content", "reason"), [
    (0o644, f"{TOKEN}\n", "mode 0644 lets others at it (chmod 600"),
    (0o620, f"{TOKEN}\n", "mode 0620 lets others at it"),
    (0o600, "", "not a bearer token"),
    (0o600, "s3cr3t\n", "too short to be secret"),
    (0o600, f"{TOKEN} {TOKEN}\n", "not a bearer token"),
    (0o600, "x" * 5000, "longer than 4096 bytes"),
])
def test_an_unusable_token_file_is_refused_without_quoting_it(
        tmp_path: Path, mode: int, content: str, reason: str) -> None:
    path = tmp_path / "api-token"
    path.write_text(content)
    path.chmod(mode)
    with pytest.raises(Invalid) as caught:
        ensure_token(path)
    assert str(caught.value).startswith(f"API token file {path}: ")
    assert reason in str(caught.value)
    if content:
        assert content.split()[0] not in str(caught.value)


def test_a_group_readable_token_file_is_taken(tmp_path: Path) -> None:
    """As the socket's group may be given access, the token's group may read it."""
    path = tmp_path / "api-token"
    path.write_text(TOKEN)
    path.chmod(0o640)
    assert ensure_token(path) == TOKEN


# -- TLS ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def tls_config(pki: Pki, client_ca: Path | None) -> DaemonConfig:
    return DaemonConfig(config_path=(), api_listen=("127.0.0.1", 0), api_tls_cert=pki.server_cert,
                        api_tls_key=pki.server_key, api_tls_client_ca=client_ca)


def client_context(pki: Pki, cert: Path | None, key: Path | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=pki.ca)
    if cert is not None:
        context.load_cert_chain(cert, key)
    return context


@pytest.fixture
def tls_api(tmp_path: Path, pki: Pki) -> Iterator[tuple[str, int]]:
    tls = server_tls(tls_config(pki, pki.ca))
    with served(FakeBackend(tmp_path), tmp_path / "ctrd.sock",
                TcpListener("127.0.0.1", 0, TOKEN, tls)) as runner:
        yield tcp_address(runner)


def tls_request(address: tuple[str, int], context: ssl.SSLContext,
                token: str = TOKEN) -> int:
    connection = http.client.HTTPSConnection(*address, context=context, timeout=10)
    try:
        connection.request("GET", "/v1/containers", headers={"Authorization": f"Bearer {token}"})
        return connection.getresponse().status
    finally:
        connection.close()


def test_tls_with_a_client_certificate_of_the_ca_and_the_token(
        tls_api: tuple[str, int], pki: Pki) -> None:
    context = client_context(pki, pki.client_cert, pki.client_key)
    assert tls_request(tls_api, context) == 200
    assert tls_request(tls_api, context, token="not-the-token-0123456789") == 401


@pytest.mark.parametrize("who", ["no certificate", "a stranger's certificate"])
def test_tls_refuses_a_client_without_a_certificate_of_the_ca(
        tls_api: tuple[str, int], pki: Pki, who: str) -> None:
    cert, key = ((None, None) if who == "no certificate"
                 else (pki.stranger_cert, pki.stranger_key))
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        tls_request(tls_api, client_context(pki, cert, key))


def test_tls_refuses_plain_http(tls_api: tuple[str, int]) -> None:
    with pytest.raises((http.client.HTTPException, ConnectionResetError)):
        over_tcp(tls_api, "GET", "/v1/containers", {"Authorization": f"Bearer {TOKEN}"})


def test_tls_without_a_client_ca_takes_any_client(tmp_path: Path, pki: Pki) -> None:
    tls = server_tls(tls_config(pki, None))
    with served(FakeBackend(tmp_path), tmp_path / "ctrd.sock",
                TcpListener("127.0.0.1", 0, TOKEN, tls)) as runner:
        assert tls_request(tcp_address(runner), client_context(pki, None, None)) == 200


def test_unusable_tls_files_name_the_setting(tmp_path: Path, pki: Pki) -> None:
    with pytest.raises(Invalid, match=r"^api_tls_cert .* with api_tls_key .*: No such file"):
        server_tls(DaemonConfig(config_path=(), api_tls_cert=tmp_path / "none.pem",
                                api_tls_key=pki.server_key))
    with pytest.raises(Invalid, match=r"^api_tls_cert .*: KEY_VALUES_MISMATCH"):
        server_tls(DaemonConfig(config_path=(), api_tls_cert=pki.server_cert,
                                api_tls_key=pki.client_key))
    (tmp_path / "empty.pem").write_text("")
    with pytest.raises(Invalid, match=rf"^api_tls_client_ca {tmp_path / 'empty.pem'}: "):
        server_tls(tls_config(pki, tmp_path / "empty.pem"))


# -- ctrctl --host --------------------------------------------------------------------------------

def ctrctl(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CTR_")}
    return subprocess.run([sys.executable, "-m", "supervisor.cli.main", *args],
                          capture_output=True, text=True, cwd=REPO, timeout=30,
                          env={**environ, **(env or {})})


def test_ctrctl_host_tcp_reads_the_token_file(tmp_path: Path) -> None:
    backend = FakeBackend(tmp_path)
    (tmp_path / "state").mkdir()
    token_file = tmp_path / "state" / "api-token"
    token_file.write_text(TOKEN + "\n")
    with served(backend, tmp_path / "ctrd.sock", TcpListener("127.0.0.1", 0, TOKEN)) as runner:
        host, port = tcp_address(runner)
        url = f"tcp://{host}:{port}"
        by_flag = ctrctl("--host", url, "--api-token-file", str(token_file), "stop", "web")
        assert by_flag.returncode == 0, by_flag.stderr
        assert backend.views["web"].state == "stopped"
        # the default token file is the one ctrd writes in its state directory
        by_env = ctrctl("list", env={"CTR_HOST": url, "CTR_STATE_DIR": str(tmp_path / "state")})
        assert by_env.returncode == 0 and "web" in by_env.stdout, by_env.stderr
        other = tmp_path / "other-token"
        other.write_text("not-the-token-0123456789\n")
        refused = ctrctl("-H", url, "--api-token-file", str(other), "list")
        assert (refused.returncode, refused.stderr) == (
            1, f"ctrctl: ctrd at {url} refused the API token of {other}\n")
        missing = ctrctl("-H", url, "--api-token-file", str(tmp_path / "none"), "list")
        assert missing.stderr == (f"ctrctl: API token file {tmp_path / 'none'}: "
                                  "No such file or directory\n")


def test_ctrctl_host_tcp_with_tls(tmp_path: Path, pki: Pki) -> None:
    token_file = tmp_path / "api-token"
    token_file.write_text(TOKEN)
    tls = server_tls(tls_config(pki, pki.ca))
    with served(FakeBackend(tmp_path), tmp_path / "ctrd.sock",
                TcpListener("127.0.0.1", 0, TOKEN, tls)) as runner:
        url = "tcp://{}:{}".format(*tcp_address(runner))
        base = ("-H", url, "--api-token-file", str(token_file), "--tls-ca", str(pki.ca))
        served_ok = ctrctl(*base, "--tls-cert", str(pki.client_cert), "--tls-key",
                           str(pki.client_key), "list")
        assert served_ok.returncode == 0 and "web" in served_ok.stdout, served_ok.stderr
        by_env = ctrctl("list", env={"CTR_HOST": url, "CTR_API_TOKEN_FILE": str(token_file),
                                     "CTR_TLS_CA": str(pki.ca),
                                     "CTR_TLS_CERT": str(pki.client_cert),
                                     "CTR_TLS_KEY": str(pki.client_key)})
        assert by_env.returncode == 0, by_env.stderr
        no_cert = ctrctl(*base, "list")
        assert no_cert.returncode == 1 and no_cert.stderr.startswith(
            f"ctrctl: {'cannot reach' if 'TLS' in no_cert.stderr else 'lost the connection to'}"
            f" ctrd at {url}: "), no_cert.stderr
        plain = ctrctl("-H", url, "--api-token-file", str(token_file), "list")
        assert plain.returncode == 1 and plain.stderr.startswith(
            f"ctrctl: lost the connection to ctrd at {url}: "), plain.stderr


@pytest.mark.parametrize(("value", "reason"), [
    ("localhost:8080", "not tcp://HOST:PORT or unix:///PATH: 'localhost:8080'"),
    ("tcp://localhost", "not HOST:PORT: 'localhost'"),
    ("tcp://127.0.0.1:0", "port 0 is out of range"),
    ("unix://relative", "not tcp://HOST:PORT or unix:///PATH"),
])
def test_ctrctl_bad_host_is_a_usage_error(value: str, reason: str) -> None:
    result = ctrctl("--host", value, "list")
    assert result.returncode == 2 and reason in result.stderr, result.stderr


def test_ctrctl_host_unix_is_the_socket(tmp_path: Path) -> None:
    with served(FakeBackend(tmp_path), tmp_path / "ctrd.sock"):
        result = ctrctl("--host", f"unix://{tmp_path / 'ctrd.sock'}", "list")
        assert result.returncode == 0 and "web" in result.stdout, result.stderr
