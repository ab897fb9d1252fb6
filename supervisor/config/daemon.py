"""ctrd's own settings: a flag beats its environment variable, which beats ctrd.toml, which beats
the default.

``ctrd.toml`` is looked up like a definition (the first directory of the config path that has
it, drop-ins ``ctrd.toml.d/*.toml`` from all of them), so ``--config-dir`` moves it too. Its keys
are the settings below by the same names, e.g. ``metrics_listen = "off"``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from supervisor.config.document import read
from supervisor.config.errors import ConfigError, DefinitionError, Problem
from supervisor.config.loader import DAEMON_CONFIG, find_files, search_path
from supervisor.config.reader import Checker
from supervisor.model import defaults
from supervisor.model.names import interface
from supervisor.model.network import host_port, pool
from supervisor.model.values import absolute_path, integer, one_of, string

DEFAULT_METRICS_LISTEN = ("127.0.0.1", 9838)
OFF = "off"
WARM_POOL = 2


class DaemonConfigError(ConfigError):
    """A bad flag, environment variable or ctrd.toml setting, named as the user wrote it."""


@dataclass(frozen=True)
class DaemonConfig:
    config_path: tuple[Path, ...]
    state_dir: Path = defaults.STATE_DIR
    data_dir: Path = defaults.DATA_DIR
    metrics_listen: tuple[str, int] | None = DEFAULT_METRICS_LISTEN  # None: off
    api_listen: tuple[str, int] | None = None  # the extra TCP listener, off by default
    api_token_file: Path | None = None  # None: STATE_DIR/api-token
    api_tls_cert: Path | None = None  # TLS on the TCP listener, with this certificate...
    api_tls_key: Path | None = None  # ... and its key
    api_tls_client_ca: Path | None = None  # and client certificates signed by this CA required
    cgroup_driver: str = "auto"
    pool: str = defaults.POOL
    bridge: str = defaults.BRIDGE
    warm_pool: int = WARM_POOL  # starts prepared ahead, per kind (runtime/warm.py); 0: off

    @property
    def token_file(self) -> Path:
        """Where the TCP listener's bearer token is (ctrd writes one when it is missing)."""
        return self.api_token_file or self.state_dir / defaults.API_TOKEN


def listen(value: Any) -> tuple[str, int] | None:
    """``HOST:PORT`` (``[IPV6]:PORT``) or ``off``."""
    text = string(value).strip()
    return None if text == OFF else host_port(text, repr(OFF))


def host_path(value: Any) -> Path:
    return Path(absolute_path(value))


# setting -> (environment variable, parser); the flag is --SETTING with '-' for '_'.
SETTINGS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "state_dir": ("CTR_STATE_DIR", host_path),
    "data_dir": ("CTR_DATA_DIR", host_path),
    "metrics_listen": ("CTR_METRICS_LISTEN", listen),
    "api_listen": ("CTR_API_LISTEN", listen),
    "api_token_file": ("CTR_API_TOKEN_FILE", host_path),
    "api_tls_cert": ("CTR_API_TLS_CERT", host_path),
    "api_tls_key": ("CTR_API_TLS_KEY", host_path),
    "api_tls_client_ca": ("CTR_API_TLS_CLIENT_CA", host_path),
    "cgroup_driver": ("CTR_CGROUP_DRIVER", one_of(*defaults.CGROUP_DRIVERS)),
    "pool": ("CTR_NETWORK_POOL", pool),
    "bridge": ("CTR_BRIDGE", interface),
    "warm_pool": ("CTR_WARM_POOL", integer(0, 64)),
}


def daemon_config(argv_values: Mapping[str, str | None],
                  environ: Mapping[str, str]) -> DaemonConfig:
    """The settings from flags (``argv_values``, None where not given), ``environ`` and ctrd.toml;
    raises ``DaemonConfigError`` naming the flag, variable or file and key of each bad value."""
    config_dir = argv_values.get("config_dir")
    path = search_path(Path(config_dir) if config_dir else None, environ)
    settings = _from_file(path)
    problems = []
    for name, (variable, parse) in SETTINGS.items():
        if (flag := argv_values.get(name)) is not None:
            given, source = flag, f"--{name.replace('_', '-')}"
        elif environ.get(variable):  # set but empty counts as unset, as in systemd
            given, source = environ[variable], variable
        else:
            continue
        try:
            settings[name] = parse(given)
        except ValueError as e:
            problems.append(Problem(None, source, str(e)))
    problems += _tls_problems(settings)
    if problems:
        raise DaemonConfigError.of(problems)
    return DaemonConfig(config_path=path, **settings)


# setting -> the settings it needs, as docker's --tlscert needs --tlskey
_TLS_NEEDS = {"api_tls_cert": ("api_tls_key",), "api_tls_key": ("api_tls_cert",),
              "api_tls_client_ca": ("api_tls_cert", "api_tls_key")}


def _tls_problems(settings: Mapping[str, Any]) -> list[Problem]:
    return [Problem(None, name, f"needs {needed} too")
            for name, needs in _TLS_NEEDS.items() if settings.get(name) is not None
            for needed in needs if settings.get(needed) is None]


def _from_file(path: tuple[Path, ...]) -> dict[str, Any]:
    """The settings ctrd.toml and its drop-ins make, if there is one."""
    files = find_files(DAEMON_CONFIG, path)
    if not files:
        return {}
    try:
        checker = Checker(read(files))
        table = checker.root(SETTINGS)
        settings = {name: table.get(name, parse) for name, (_, parse) in SETTINGS.items()
                    if table.has(name)}
        checker.check()
    except DefinitionError as e:
        raise DaemonConfigError.of(e.problems) from None
    return settings
