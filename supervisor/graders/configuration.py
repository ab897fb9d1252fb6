"""The course graders' JSON configurations -> ``ContainerSpec``.

A configuration as the graders upload it::

    {"name": "web", "major": "1", "minor": "01", "base_image": "basefs.tar.gz",
     "mounts": ["webserver.tar /webserver/ READ", "homedir.tar /webserver/home READWRITE"],
     "startup_script": "/webserver/tiny.sh", "startup_owner": "root",
     "startup_env": "PORT=8080;LD_LIBRARY_PATH=${LD_LIBRARY_PATH}:/var/lib64"}

It is stored as ``DATA_DIR/configs/NAME-MAJOR-MINOR.cfg``, the JSON as received. Its instances
share the host's network (graders reach them at localhost:PORT) but have their own pid, mount,
uts and ipc namespaces; they are never restarted, and destroying one is ``docker rm -f``: SIGKILL
at once, since a shell script as PID 1 ignores SIGTERM and would only delay every destroy.

Decisions where the format is silent:

- Relative tarball names, of the base image and of mounts alike, resolve in ``DATA_DIR/images``
  and may not leave it; absolute paths are used as they are.
- ``major`` and ``minor`` may be strings or integers; both become strings.
- ``${VAR}`` in ``startup_env`` is expanded here, once, from the entries before it over the
  container's default ``PATH``; any other variable is empty, as an unset one is in sh (``HOME``
  and ``HOSTNAME`` are set only at start, so they cannot be referred to). ``$VAR`` without braces
  is kept as written.
- Keys the format does not know are ignored, so a grader's extra field does not refuse a
  configuration; a known key with an unusable value does (the whole configuration is refused).
- Without ``startup_script`` an instance runs ``/bin/sh`` alone, which ends at once.
"""

from __future__ import annotations

import json
import logging
import posixpath
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from supervisor.model import defaults
from supervisor.model.names import container_name, user
from supervisor.model.signals import SIGKILL
from supervisor.model.spec import ContainerSpec, MountSpec, NetworkSpec, RestartSpec, StopSpec

log = logging.getLogger(__name__)

CONFIGS = "configs"  # under the data directory
SUFFIX = ".cfg"
REQUIRED = ("name", "major", "minor", "base_image")
MODES = {"read": True, "ro": True, "readwrite": False, "rw": False}  # -> read-only
MAX_KEY = 56  # room for an instance suffix (-NNNNNN) within a container name's 63 characters
SHELL = "/bin/sh"

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class GradersConfig:
    """One configuration: its identity, the container it describes and the text it came in."""

    name: str
    major: str
    minor: str
    spec: ContainerSpec  # named after the key
    text: str

    @property
    def key(self) -> str:
        return self.spec.name

    @property
    def filename(self) -> str:
        return filename(self.key)


def filename(key: str) -> str:
    return f"{key}{SUFFIX}"


def config_path(data_dir: Path, key: str) -> Path:
    return data_dir / CONFIGS / filename(key)


def _field(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if isinstance(value, int) and not isinstance(value, bool) and key in ("major", "minor"):
        return str(value)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key}: a non-empty string is required, got {value!r}")
    return value


def config_key(body: dict[str, Any]) -> str:
    """``NAME-MAJOR-MINOR`` of a configuration or a launch request."""
    key = "-".join(_field(body, key) for key in ("name", "major", "minor"))
    try:
        container_name(key)
    except ValueError as exc:
        raise ValueError(f"name, major, minor: {exc}") from None
    if len(key) > MAX_KEY:
        raise ValueError(f"name, major, minor: {key!r} is longer than {MAX_KEY} characters")
    return key


def _tarball(value: str, data_dir: Path, what: str) -> str:
    """An absolute path as it is; a relative one inside ``data_dir/images``."""
    if value.startswith("/"):
        return posixpath.normpath(value)
    relative = posixpath.normpath(value)
    if relative == ".." or relative.startswith("../"):
        raise ValueError(f"{what}: {value!r} leaves the image directory")
    return str(data_dir / "images" / relative)


def _mount(index: int, value: object, data_dir: Path) -> MountSpec:
    where = f"mounts[{index}]"
    if not isinstance(value, str) or len(value.split()) != 3:
        raise ValueError(f"{where}: expected \"TARBALL TARGET MODE\", got {value!r}")
    source, target, mode = value.split()
    if not target.startswith("/"):
        raise ValueError(f"{where}: the target must be an absolute path, got {target!r}")
    if mode.lower() not in MODES:
        raise ValueError(f"{where}: the mode must be READ, READWRITE, RO or RW, got {mode!r}")
    return MountSpec(target=posixpath.normpath(target), source=_tarball(source, data_dir, where),
                     read_only=MODES[mode.lower()])


def environment(text: str) -> tuple[tuple[str, str], ...]:
    """``K=V;K=V`` with ``${VAR}`` expanded from the entries before it over the default PATH."""
    env = {"PATH": defaults.PATH}
    entries: dict[str, str] = {}
    for entry in (part.strip() for part in text.split(";")):
        if not entry:
            continue
        name, equals, value = entry.partition("=")
        name = name.strip()
        if not equals or not _ENV_NAME.fullmatch(name):
            raise ValueError(f"startup_env: {entry!r} is not NAME=VALUE")
        entries[name] = env[name] = _VARIABLE.sub(lambda m: env.get(m[1], ""), value.strip())
    return tuple(entries.items())


def _optional_string(body: dict[str, Any], key: str, default: str) -> str:
    value = default if body.get(key) is None else body[key]
    if not isinstance(value, str):
        raise ValueError(f"{key}: expected a string, got {value!r}")
    return value


def parse(text: str, data_dir: Path) -> GradersConfig:
    """The configuration in ``text``; ``ValueError`` saying why if it is not usable.

    Only its form is checked: the tarballs are looked for when an instance starts.
    """
    try:
        body = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    except RecursionError:
        raise ValueError("not JSON: nested too deeply") from None
    if not isinstance(body, dict):
        raise ValueError("not a JSON object")
    missing = [key for key in REQUIRED if key not in body]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    key = config_key(body)
    mounts = [] if body.get("mounts") is None else body["mounts"]
    if not isinstance(mounts, list):
        raise ValueError(f"mounts: expected an array of strings, got {mounts!r}")
    script = _optional_string(body, "startup_script", "")
    owner = _optional_string(body, "startup_owner", "root") or "root"
    try:
        user(owner)
    except ValueError as exc:
        raise ValueError(f"startup_owner: {exc}") from None
    spec = ContainerSpec(
        name=key,
        image=_tarball(_field(body, "base_image"), data_dir, "base_image"),
        command=(SHELL, script) if script else (SHELL,),
        user=owner,
        environment=environment(_optional_string(body, "startup_env", "")),
        mounts=tuple(_mount(i, mount, data_dir) for i, mount in enumerate(mounts)),
        network=NetworkSpec(mode="host"),
        restart=RestartSpec(policy="no"),
        stop=StopSpec(signal=SIGKILL),
    )
    return GradersConfig(_field(body, "name"), _field(body, "major"), _field(body, "minor"),
                         spec, text)


def check_tarballs(spec: ContainerSpec) -> None:
    """Refuse an instance whose base image or mount is no tarball, when it is to start.

    The format names tarballs, and its routes answer on the TCP listener without the token:
    a directory there would be bound in as it is (``"/ /host READWRITE"`` would hand the host's
    root to whoever reaches the port), so only tarballs, unpacked into layers, are taken.
    """
    sources = [("base_image", spec.image),
               *((f"mounts[{index}]", mount.source) for index, mount in enumerate(spec.mounts))]
    for what, source in sources:
        path = Path(source)
        if not path.exists():
            raise ValueError(f"{what}: {source} does not exist")
        if not (path.is_file() and tarfile.is_tarfile(path)):
            raise ValueError(f"{what}: {source} is not a tarball")


def load_all(data_dir: Path) -> dict[str, GradersConfig]:
    """Every stored configuration by key; an unreadable one is logged and left out."""
    configs = {}
    for path in sorted((data_dir / CONFIGS).glob(f"*{SUFFIX}")):
        try:
            config = parse(path.read_text(), data_dir)
        except (OSError, ValueError) as exc:
            log.error("graders' configuration %s: %s", path, exc)
            continue
        if config.filename != path.name:
            log.error("graders' configuration %s: holds %s, not %s", path, config.key,
                      path.name.removesuffix(SUFFIX))
            continue
        configs[config.key] = config
    return configs
