"""The parts of the distribution protocol Debian's registry cannot show without a token server
or blob storage: the bearer-token flow, redirects that drop the registry's credentials, retries
of transient errors, refused manifests. A small registry of the test's own on 127.0.0.1 speaks
them (the standard library's HTTP server, in a thread, shut down after each test)."""

from __future__ import annotations

import base64
import http.server
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from supervisor.images import auth, pull, registries
from supervisor.images.manifest import ManifestError
from supervisor.images.registry import UnauthorizedError
from supervisor.images.store import Store
from tests.images_fixtures import Entry, FakeRegistry, Handler, compress, reply, sha256, tar_bytes

TOKEN = "token-for-pull"


@pytest.fixture
def fake() -> Iterator[FakeRegistry]:
    server = FakeRegistry()
    server.thread.start()
    try:
        yield server
    finally:
        server.close()


def only_with(authorization: str, then: Handler, challenge: str) -> Handler:
    def handle(request: http.server.BaseHTTPRequestHandler) -> None:
        if request.headers.get("Authorization") == authorization:
            then(request)
        else:
            reply(401, b'{"errors": [{"code": "UNAUTHORIZED", "message": "authentication '
                  b'required"}]}', WWW_Authenticate=challenge)(request)
    return handle


def _image(fake: FakeRegistry, repository: str) -> tuple[str, bytes]:
    """Serve a one-layer image at ``repository:1``; returns its layer's blob digest and blob."""
    tar = tar_bytes([Entry("hello", data=b"world\n")])
    blob = compress(tar, "gzip")
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [sha256(tar)]}}).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": sha256(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": sha256(blob), "size": len(blob)}]}).encode()
    fake.routes[f"/v2/{repository}/manifests/1"] = reply(
        200, manifest, Content_Type="application/vnd.oci.image.manifest.v1+json")
    fake.routes[f"/v2/{repository}/blobs/{sha256(config)}"] = reply(200, config)
    fake.routes[f"/v2/{repository}/blobs/{sha256(blob)}"] = reply(200, blob)
    return sha256(blob), blob


def _options(fake: FakeRegistry, authfile: Path | None = None) -> pull.PullOptions:
    conf = registries.RegistriesConf(
        registries=(registries.Registry(fake.host, fake.host, insecure=True),))
    return pull.PullOptions(registries=conf, authfile=authfile, retries=2, backoff=0.01)


def _protect(fake: FakeRegistry, authorization: str, challenge: str) -> None:
    for path, route in list(fake.routes.items()):
        if path.startswith("/v2/"):
            fake.routes[path] = only_with(authorization, route, challenge)


def test_bearer_token_from_the_challenge_realm(fake: FakeRegistry, tmp_path: Path) -> None:
    _image(fake, "team/app")
    challenge = (f'Bearer realm="http://{fake.host}/token",service="fake-registry",'
                 'scope="repository:team/app:pull"')
    _protect(fake, f"Bearer {TOKEN}", challenge)
    basic = "Basic " + base64.b64encode(b"bob:pw").decode()
    fake.routes["/token"] = only_with(basic, reply(200, json.dumps({"token": TOKEN}).encode()),
                                      'Basic realm="token"')
    authfile = tmp_path / "auth.json"
    auth.store(fake.host, auth.Credentials("bob", "pw"), authfile)
    result = pull.pull(f"{fake.host}/team/app:1", Store(tmp_path / "data"),
                       _options(fake, authfile))
    assert (result.image.layers[0].path / "hello").read_text() == "world\n"
    tokens = [path for path, _ in fake.seen if path.startswith("/token")]
    assert tokens == ["/token?service=fake-registry&scope=repository%3Ateam%2Fapp%3Apull"]
    assert all(a == f"Bearer {TOKEN}" for p, a in fake.seen[-3:])  # after the first 401


def test_a_token_server_refusing_the_password_is_a_clear_401(fake: FakeRegistry,
                                                            tmp_path: Path) -> None:
    _image(fake, "team/app")
    _protect(fake, f"Bearer {TOKEN}", f'Bearer realm="http://{fake.host}/token"')
    fake.routes["/token"] = reply(401, b'{"errors": [{"code": "UNAUTHORIZED", "message": '
                                  b'"bad credentials"}]}')
    authfile = tmp_path / "auth.json"
    auth.store(fake.host, auth.Credentials("bob", "wrong"), authfile)
    with pytest.raises(UnauthorizedError, match=r"401 unauthorized: bad credentials "
                       r"\(UNAUTHORIZED\) \(wrong user name or password\)"):
        pull.pull(f"{fake.host}/team/app:1", Store(tmp_path / "data"), _options(fake, authfile))


def test_a_redirect_to_blob_storage_drops_the_registrys_credentials(
        fake: FakeRegistry, tmp_path: Path) -> None:
    storage = FakeRegistry()
    storage.thread.start()
    try:
        layer, blob = _image(fake, "app")
        storage.routes[f"/bucket/{layer}"] = reply(200, blob)
        fake.routes[f"/v2/app/blobs/{layer}"] = reply(
            307, Location=f"http://{storage.host}/bucket/{layer}")
        _protect(fake, "Basic " + base64.b64encode(b"u:p").decode(), 'Basic realm="fake"')
        authfile = tmp_path / "auth.json"
        auth.store(fake.host, auth.Credentials("u", "p"), authfile)
        result = pull.pull(f"{fake.host}/app:1", Store(tmp_path / "data"),
                           _options(fake, authfile))
        assert (result.image.layers[0].path / "hello").read_text() == "world\n"
        assert storage.seen == [(f"/bucket/{layer}", "")]
    finally:
        storage.close()


def test_transient_errors_are_retried(fake: FakeRegistry, tmp_path: Path) -> None:
    _image(fake, "app")
    path = "/v2/app/manifests/1"
    good = fake.routes[path]
    answers = iter([reply(503), reply(429)])
    fake.routes[path] = lambda request: next(answers, good)(request)
    pull.pull(f"{fake.host}/app:1", Store(tmp_path / "data"), _options(fake))
    assert [p for p, _ in fake.seen].count(path) == 3


@pytest.mark.parametrize("document, complaint", [
    ({"schemaVersion": 1, "name": "app", "fsLayers": []}, "schema 1 manifests are not supp"),
    ({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
      "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 1,
                 "digest": "sha256:" + "0" * 64},
      "layers": [{"mediaType": "application/vnd.example.wasm", "size": 1,
                  "digest": "sha256:" + "0" * 64}]}, r"layers\[0\]: media type"),
    ({"padding": "x" * (5 << 20)}, "over the 4194304 byte limit"),
])
def test_unusable_manifests_are_refused(fake: FakeRegistry, tmp_path: Path,
                                        document: dict[str, object], complaint: str) -> None:
    fake.routes["/v2/app/manifests/1"] = reply(200, json.dumps(document).encode(),
                                               Content_Type="application/json")
    store = Store(tmp_path / "data")
    with pytest.raises((ManifestError, RuntimeError), match=complaint):
        pull.pull(f"{fake.host}/app:1", store, _options(fake))
    assert store.records() == []
