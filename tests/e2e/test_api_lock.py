"""A live ctrd's TCP listener behind its lock: the token file it writes, 401 without the token,
ctrctl --host with it, TLS with client certificates, and the graders' routes, which answer
without the token but can start nothing but a graders' configuration."""

from __future__ import annotations

import http.client
import json
import signal
import stat
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Daemon, Env
from tests.e2e.test_graders import free_port
from tests.tls_fixtures import make_pki

UNAUTHORIZED = {"error": "unauthorized", "detail": None}
PRIVILEGED = ('[container]\nimage = "busybox"\ncommand = ["/bin/sleep", "600"]\n'
              'privileged = true\n[network]\nmode = "none"\n')


def listen_on_tcp(ctrd: Daemon, *settings: str) -> int:
    """``api_listen`` on a free loopback port, and ``settings``, in the daemon's ctrd.toml."""
    port = free_port()
    with (ctrd.config_dir / "ctrd.toml").open("a") as toml:
        toml.write("\n".join([f'api_listen = "127.0.0.1:{port}"', *settings]) + "\n")
    return port


def call(port: int, method: str, path: str, token: str | None = None,
         body: Any = None) -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    try:
        connection.request(method, path, None if body is None else json.dumps(body), headers)
        response = connection.getresponse()
        raw = response.read()
        return response.status, json.loads(raw) if raw else None
    finally:
        connection.close()


def test_a_live_ctrd_serves_v1_over_tcp_only_with_its_token(ctrd: Daemon, env: Env) -> None:
    port = listen_on_tcp(ctrd)
    ctrd.define("api-lock", PRIVILEGED)
    ctrd.start()
    token_file = env.state / "api-token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600 and token_file.stat().st_uid == 0
    token = token_file.read_text().strip()
    for wrong in (None, "x" * 40, token[:-1]):
        assert call(port, "GET", "/v1/containers", wrong) == (401, UNAUTHORIZED)
        # the attack the lock is for: a privileged container started by whoever reaches the port
        assert call(port, "POST", "/v1/containers/api-lock/start", wrong) == (401, UNAUTHORIZED)
        assert call(port, "PUT", "/v1/definitions/api-evil", wrong) == (401, UNAUTHORIZED)
    assert ctrd.status("api-lock")["state"] == "stopped"
    status, views = call(port, "GET", "/v1/containers", token)
    assert status == 200 and [v["name"] for v in views] == ["api-lock"]
    via_host = env.ctrctl("--host", f"tcp://127.0.0.1:{port}", "status", "api-lock")
    assert via_host.returncode == 0 and "stopped" in via_host.stdout, via_host.stderr

    ctrd.kill(signal.SIGTERM)
    ctrd.start()  # a restarted ctrd keeps the token its clients have
    assert token_file.read_text().strip() == token
    assert call(port, "GET", "/v1/containers/api-lock", token)[0] == 200


def test_a_token_file_others_may_read_stops_ctrd(ctrd: Daemon, env: Env, tmp_path: Path) -> None:
    token_file = tmp_path / "loose-token"
    token_file.write_text("a-token-others-can-read-0123456789\n")
    token_file.chmod(0o644)
    listen_on_tcp(ctrd, f'api_token_file = "{token_file}"')
    with pytest.raises(AssertionError, match="ctrd exited"):
        ctrd.start()
    assert f"ctrd: API token file {token_file}: mode 0644 lets others at it" in \
        ctrd.log.read_text()
    assert "0123456789" not in ctrd.log.read_text()


def test_tls_with_client_certificates(ctrd: Daemon, env: Env, tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    port = listen_on_tcp(ctrd, f'api_tls_cert = "{pki.server_cert}"',
                         f'api_tls_key = "{pki.server_key}"',
                         f'api_tls_client_ca = "{pki.ca}"')
    ctrd.start()
    url, ca = f"tcp://127.0.0.1:{port}", ("--tls-ca", str(pki.ca))
    with_cert = env.ctrctl("-H", url, *ca, "--tls-cert", str(pki.client_cert), "--tls-key",
                           str(pki.client_key), "list")
    assert with_cert.returncode == 0, with_cert.stderr
    for flags in ((), ("--tls-cert", str(pki.stranger_cert), "--tls-key",
                       str(pki.stranger_key))):
        refused = env.ctrctl("-H", url, *ca, *flags, "list")
        assert refused.returncode == 1 and f"ctrd at {url}: " in refused.stderr, refused.stderr
    plain = env.ctrctl("-H", url, "list")
    assert plain.returncode == 1 and "lost the connection" in plain.stderr


def test_graders_routes_answer_without_the_token_and_start_only_their_configurations(
        ctrd: Daemon, env: Env) -> None:
    port = listen_on_tcp(ctrd)
    ctrd.define("api-gr-1-0", PRIVILEGED)  # a /v1 definition named as a configuration would be
    ctrd.start()
    assert call(port, "GET", "/cfginfo") == (200, {"files": []})
    # /launch finds only graders' configurations: the definition stays stopped
    assert call(port, "POST", "/launch", body={"name": "api-gr", "major": "1", "minor": "0"}) \
        == (404, None)
    assert call(port, "POST", "/config", body={"name": "api-gr", "major": "1", "minor": "0",
                                               "base_image": "x.tar"}) == (409, None)
    # a configuration that would bind the host's root into an instance is stored (its form is
    # fine) but never starts
    host_root = {"name": "api-gh", "major": "1", "minor": "0", "base_image": "/",
                 "mounts": ["/ /host READWRITE"], "startup_script": "/bin/true"}
    assert call(port, "POST", "/config", body=host_root) == (200, None)
    status, error = call(port, "POST", "/launch", body={"name": "api-gh", "major": "1",
                                                        "minor": "0"})
    assert (status, error["error"]) == (400, "configuration api-gh-1-0: base_image: / is not "
                                        "a tarball")
    assert call(port, "GET", "/list") == (200, {"instances": []})
    assert [v["name"] for v in json.loads(ctrd.ctl("list", "-o", "json").stdout)] == \
        ["api-gr-1-0"]
    assert ctrd.status("api-gr-1-0")["state"] == "stopped"
