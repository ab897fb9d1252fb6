"""ctrd's settings: flag > environment variable > ctrd.toml (and its drop-ins) > default."""

from __future__ import annotations

from pathlib import Path

import pytest

from supervisor.config.daemon import SETTINGS, DaemonConfig, DaemonConfigError, daemon_config
from tests.conftest import REPO


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "ctr"
    directory.mkdir()
    return directory


def load(config_dir: Path, environ: dict[str, str] | None = None,
         **flags: str | None) -> DaemonConfig:
    return daemon_config({"config_dir": str(config_dir), **flags}, environ or {})


def failure(config_dir: Path, environ: dict[str, str] | None = None,
            **flags: str | None) -> str:
    with pytest.raises(DaemonConfigError) as caught:
        load(config_dir, environ, **flags)
    return str(caught.value)


def test_defaults(config_dir: Path) -> None:
    assert load(config_dir) == DaemonConfig(
        config_path=(config_dir,), state_dir=Path("/run/ctr"), data_dir=Path("/var/lib/ctr"),
        metrics_listen=("127.0.0.1", 9838), api_listen=None, cgroup_driver="auto",
        pool="10.88.0.0/16", bridge="ctr0")


def test_config_dir_flag_beats_environment(config_dir: Path, tmp_path: Path) -> None:
    (config_dir / "ctrd.toml").write_text('bridge = "from-flag-dir"\n')
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "ctrd.toml").write_text('bridge = "from-env-dir"\n')
    environ = {"CTR_CONFIG_DIR": str(tmp_path / "other")}
    assert load(config_dir, environ).bridge == "from-flag-dir"
    from_env = daemon_config({"config_dir": None}, environ)
    assert (from_env.config_path, from_env.bridge) == ((tmp_path / "other",), "from-env-dir")


def test_flag_beats_environment_beats_file(config_dir: Path) -> None:
    (config_dir / "ctrd.toml").write_text(
        'state_dir = "/file/state"\ndata_dir = "/file/data"\nmetrics_listen = "off"\n'
        'api_listen = "127.0.0.1:7000"\ncgroup_driver = "cgroupfs"\npool = "10.1.0.0/24"\n'
        'bridge = "file0"\n')
    from_file = load(config_dir)
    assert from_file == DaemonConfig(
        config_path=(config_dir,), state_dir=Path("/file/state"), data_dir=Path("/file/data"),
        metrics_listen=None, api_listen=("127.0.0.1", 7000), cgroup_driver="cgroupfs",
        pool="10.1.0.0/24", bridge="file0")
    environ = {"CTR_STATE_DIR": "/env/state", "CTR_DATA_DIR": "/env/data",
               "CTR_METRICS_LISTEN": "0.0.0.0:9100", "CTR_API_LISTEN": "off",
               "CTR_CGROUP_DRIVER": "systemd", "CTR_NETWORK_POOL": "10.2.0.0/16",
               "CTR_BRIDGE": "env0"}
    from_env = load(config_dir, environ)
    assert from_env == DaemonConfig(
        config_path=(config_dir,), state_dir=Path("/env/state"), data_dir=Path("/env/data"),
        metrics_listen=("0.0.0.0", 9100), api_listen=None, cgroup_driver="systemd",
        pool="10.2.0.0/16", bridge="env0")
    from_flags = load(config_dir, environ, state_dir="/flag/state", metrics_listen="[::1]:9200",
                      cgroup_driver="cgroupfs-v1", data_dir=None)
    assert (from_flags.state_dir, from_flags.metrics_listen, from_flags.cgroup_driver,
            from_flags.data_dir) == (Path("/flag/state"), ("::1", 9200), "cgroupfs-v1",
                                     Path("/env/data"))


def test_empty_environment_variable_is_unset(config_dir: Path) -> None:
    (config_dir / "ctrd.toml").write_text('metrics_listen = "127.0.0.1:1234"\n')
    assert load(config_dir, {"CTR_METRICS_LISTEN": ""}).metrics_listen == ("127.0.0.1", 1234)


def test_dropins_merge_over_the_file(config_dir: Path, tmp_path: Path) -> None:
    (config_dir / "ctrd.toml").write_text('bridge = "main0"\npool = "10.3.0.0/16"\n')
    (config_dir / "ctrd.toml.d").mkdir()
    (config_dir / "ctrd.toml.d" / "10-bridge.toml").write_text('bridge = "drop0"\n')
    assert (load(config_dir).bridge, load(config_dir).pool) == ("drop0", "10.3.0.0/16")


@pytest.mark.parametrize(("value", "reason"), [
    ("9838", "not HOST:PORT or 'off': '9838' (use e.g. 127.0.0.1:9838)"),
    ("localhost:", "not HOST:PORT"),
    (":9838", "not HOST:PORT"),
    ("127.0.0.1:0", "port 0 is out of range (1-65535)"),
    ("127.0.0.1:65536", "port 65536 is out of range"),
    ("::1:9838", "not HOST:PORT"),
])
def test_bad_listen_address_names_its_origin(config_dir: Path, value: str, reason: str) -> None:
    assert failure(config_dir, metrics_listen=value).startswith(f"--metrics-listen: {reason}")
    assert failure(config_dir, {"CTR_API_LISTEN": value}).startswith(f"CTR_API_LISTEN: {reason}")
    (config_dir / "ctrd.toml").write_text(f'metrics_listen = "{value}"\n')
    assert failure(config_dir).startswith(
        f"{config_dir / 'ctrd.toml'}: metrics_listen: {reason}")


@pytest.mark.parametrize(("line", "expected"), [
    ('cgroup_driver = "docker"', "cgroup_driver: must be one of 'auto', 'systemd', 'cgroupfs'"),
    ('pool = "10.0.0.0/31"', "pool: pool 10.0.0.0/31 is too small"),
    ('pool = "10.0.0.1/16"', "pool: not an IPv4 network: '10.0.0.1/16'"),
    ('bridge = "a-very-long-bridge-name"', "bridge: not an interface name"),
    ('bridge = "a b"', "bridge: not an interface name"),
    ('state_dir = "run/ctr"', "state_dir: must be an absolute path, got 'run/ctr'"),
    ("data_dir = 5", "data_dir: expected a string, got integer 5"),
    ("api_listen = 9838", "api_listen: expected a string, got integer 9838"),
    ('metrics = "off"', "metrics: unknown key (did you mean metrics_listen?)"),
    ("bridge = ", "invalid TOML"),
])
def test_bad_file_setting(config_dir: Path, line: str, expected: str) -> None:
    (config_dir / "ctrd.toml").write_text(line + "\n")
    assert failure(config_dir).startswith(f"{config_dir / 'ctrd.toml'}: {expected}")


def test_bad_flags_are_all_reported(config_dir: Path) -> None:
    message = failure(config_dir, {"CTR_BRIDGE": "x/y"}, cgroup_driver="nope",
                      state_dir="relative")
    assert message.splitlines() == [
        "--state-dir: must be an absolute path, got 'relative'",
        "--cgroup-driver: must be one of 'auto', 'systemd', 'cgroupfs', 'cgroupfs-v2', "
        "'cgroupfs-v1', got 'nope'",
        "CTR_BRIDGE: not an interface name: 'x/y' (1-15 characters, no '/', ':' or space)",
    ]


def test_the_api_lock_settings(config_dir: Path) -> None:
    assert load(config_dir).token_file == Path("/run/ctr/api-token")
    assert load(config_dir, state_dir="/srv/state").token_file == Path("/srv/state/api-token")
    (config_dir / "ctrd.toml").write_text(
        'api_token_file = "/etc/ctr/token"\napi_tls_cert = "/etc/ctr/tls/ctrd.pem"\n'
        'api_tls_key = "/etc/ctr/tls/ctrd-key.pem"\n')
    from_file = load(config_dir)
    assert (from_file.token_file, from_file.api_tls_cert, from_file.api_tls_key,
            from_file.api_tls_client_ca) == (Path("/etc/ctr/token"), Path("/etc/ctr/tls/ctrd.pem"),
                                             Path("/etc/ctr/tls/ctrd-key.pem"), None)
    environ = {"CTR_API_TOKEN_FILE": "/env/token", "CTR_API_TLS_CLIENT_CA": "/env/ca.pem"}
    from_env = load(config_dir, environ, api_tls_cert="/flag/cert.pem")
    assert (from_env.token_file, from_env.api_tls_cert, from_env.api_tls_client_ca) == (
        Path("/env/token"), Path("/flag/cert.pem"), Path("/env/ca.pem"))


@pytest.mark.parametrize(("settings", "problems"), [
    ({"api_tls_cert": "/c.pem"}, ["api_tls_cert: needs api_tls_key too"]),
    ({"api_tls_key": "/k.pem"}, ["api_tls_key: needs api_tls_cert too"]),
    ({"api_tls_client_ca": "/ca.pem"}, ["api_tls_client_ca: needs api_tls_cert too",
                                        "api_tls_client_ca: needs api_tls_key too"]),
    ({"api_token_file": "token"}, ["--api-token-file: must be an absolute path, got 'token'"]),
])
def test_api_lock_settings_that_do_not_fit(config_dir: Path, settings: dict[str, str],
                                           problems: list[str]) -> None:
    assert failure(config_dir, None, **settings).splitlines() == problems


def test_etc_ctrd_toml_shows_every_setting_at_its_default(config_dir: Path) -> None:
    """The example file documents each setting (SETTINGS) commented out at its default; a
    setting without a default shows an example marked so."""
    lines = (REPO / "etc" / "ctrd.toml").read_text().splitlines()
    shown = {line[1:].split("=")[0].strip(): line[1:] for line in lines
             if line.startswith("#") and "=" in line and not line.startswith("# ")}
    assert set(shown) == set(SETTINGS)
    examples = {key for key, line in shown.items() if "unset by default" in line}
    (config_dir / "ctrd.toml").write_text("\n".join(shown.values()) + "\n")
    written, default = load(config_dir), DaemonConfig(config_path=(config_dir,))
    assert written.token_file == default.token_file
    for key in set(SETTINGS) - examples - {"api_token_file"}:
        assert getattr(written, key) == getattr(default, key), key
    assert all(getattr(default, key) is None for key in examples)
