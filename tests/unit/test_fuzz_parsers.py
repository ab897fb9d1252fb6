"""Property-based fuzzing (hypothesis) of every parser a user or a file reaches: whatever comes in,
the parser returns or raises its module's declared error, and a rejection names the key or
member at fault. Derandomized, so a run is the same run everywhere; ``EXAMPLES`` per test."""

from __future__ import annotations

import io
import json
import os
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from supervisor.api import bodies
from supervisor.api.containers import KILL, LAUNCH
from supervisor.cli.ctr_runtime.info import template
from supervisor.config.daemon import SETTINGS, DaemonConfigError, daemon_config
from supervisor.config.errors import ConfigError, DefinitionError
from supervisor.config.loader import load, parse_text
from supervisor.graders import configuration as graders
from supervisor.images import imageconfig, layers, manifest
from supervisor.model import resources as limits
from supervisor.model.seccomp import parse as seccomp
from supervisor.oci import config as oci_config
from supervisor.oci.document import BundleError
from supervisor.runtime import tarball

EXAMPLES = 300
fuzz = settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Values people write, and the edges around them, mixed with anything at all.
WORDS = ("busybox", "256M", "50%", "0-1", "5s", "100ms", "max", "host", "none", "veth",
         "container:api-db", "/srv/www", "/www", "8080:80/tcp", "default", "unconfined", "root",
         "1000:1000", "10.88.0.5/24", "tmpfs", "on-failure", "always", "TERM", "-1", "0", "",
         "../x", "/", "a\0b", "1e309%", "0-99999999999", "READ", "x.tar /x READWRITE")
scalars = (st.sampled_from(WORDS) | st.text(max_size=12) | st.integers(-2**64, 2**64)
           | st.booleans() | st.floats(allow_nan=True) | st.none())
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.sampled_from(WORDS) | st.text(max_size=6),
                                             inner, max_size=3), max_leaves=8)


def objects(keys: tuple[str, ...]) -> st.SearchStrategy[dict[str, Any]]:
    """JSON objects of mostly known ``keys``, with now and then one nobody knows."""
    return st.dictionaries(st.sampled_from(keys) | st.text(max_size=6), json_values, max_size=6)


def some_keys(document: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """``document`` with any of its keys left out."""
    return st.sets(st.sampled_from(tuple(document))).map(
        lambda drop: {k: v for k, v in document.items() if k not in drop})


# -- TOML -----------------------------------------------------------------------------------------

DEFINITION_KEYS = {
    "container": ("image", "command", "hostname", "user", "environment", "working_dir",
                  "read_only", "autostart", "privileged", "entrypoint", "init", "notify"),
    "network": ("mode", "address", "ports", "egress_rate"),
    "resources": tuple(limit.name for limit in limits.FIELDS),
    "restart": ("policy", "delay", "max_delay", "burst", "interval", "reset_after",
                "stop_timeout"),
    "health": ("command", "interval", "timeout", "retries", "start_period", "on_failure"),
    "logs": ("max_size", "max_files"),
    "security": ("seccomp", "capabilities_add", "capabilities_drop", "no_new_privileges"),
    "namespaces": ("ipc", "net", "uts", "pid", "mnt", "user"),
    "mounts": ("source", "target", "read_only", "type", "size"),
    "devices": ("path",),
}


def toml_value(value: Any) -> str:
    """``value`` written as TOML (JSON's strings, numbers and arrays are TOML's too)."""
    if value is None:
        return '""'
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value) if not isinstance(value, float) or value == value else "nan"


def toml_tables(tables: dict[str, dict[str, Any]]) -> str:
    lines = []
    for table, keys in tables.items():
        array = table in ("mounts", "devices")
        lines.append(f"[[{table}]]" if array else f"[{table}]")
        lines += [f"{json.dumps(key)} = {toml_value(value)}" for key, value in keys.items()]
    return "\n".join(lines) + "\n"


definitions = st.dictionaries(
    st.sampled_from(tuple(DEFINITION_KEYS)) | st.text(max_size=5),
    st.dictionaries(st.sampled_from(sum(DEFINITION_KEYS.values(), ())) | st.text(max_size=5),
                    json_values, max_size=5), max_size=4).map(toml_tables)
texts = definitions | st.text(max_size=200)  # and what is no TOML at all


def named(error: ConfigError) -> None:
    """Every problem says where: its key, or for a file TOML cannot read, the file."""
    assert error.problems and str(error)
    for problem in error.problems:
        assert problem.reason
        assert problem.key or problem.source is not None, problem


@fuzz
@given(text=texts, dropin=st.none() | texts)
def test_definitions_and_drop_ins(text: str, dropin: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        (directory / "api-fz.toml").write_text(text)
        if dropin is not None:
            (directory / "api-fz.toml.d").mkdir()
            (directory / "api-fz.toml.d" / "10-fuzz.toml").write_text(dropin)
        try:
            parse_text("api-fz", text, source=directory / "api-fz.toml", data_dir=directory)
        except DefinitionError as e:
            named(e)
        try:
            load("api-fz", [directory], data_dir=directory)
        except DefinitionError as e:
            named(e)


@fuzz
@given(table=st.dictionaries(st.sampled_from(tuple(SETTINGS)) | st.text(max_size=5),
                             json_values, max_size=5))
def test_ctrd_toml(table: dict[str, Any]) -> None:
    text = "".join(f"{json.dumps(k)} = {toml_value(v)}\n" for k, v in table.items())
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "ctrd.toml").write_text(text)
        try:
            daemon_config({"config_dir": tmp}, {})
        except DaemonConfigError as e:
            named(e)


# -- JSON: API bodies, the graders' configurations, images, seccomp profiles ----------------------

def rejected_naming(parse: Callable[[], object], error: type[Exception],
                    names: Callable[[str], bool]) -> None:
    """``parse()`` returns, or raises ``error`` whose message ``names`` the key or member."""
    try:
        parse()
    except error as e:
        assert names(str(e)), str(e)


@fuzz
@given(body=objects(tuple(limits.BY_NAME)))
def test_api_resources_body(body: dict[str, Any]) -> None:
    try:
        bodies.resources(body)
    except bodies.FieldError as e:
        assert e.detail["key"] in body and str(e).startswith(f"{e.detail['key']}: ")
    except ValueError as e:
        assert not body and str(e).startswith("no resource to change")


@fuzz
@given(body=objects(("definition", "name", "signal")))
def test_api_launch_and_kill_bodies(body: dict[str, Any]) -> None:
    for reader in (LAUNCH, KILL):
        try:
            reader.parse(body)
        except bodies.FieldError as e:
            assert str(e).startswith(f"{e.detail['key']}: ")
            assert e.detail["key"] in body or reader.keys[e.detail["key"]].required


GRADERS_KEYS = ("name", "major", "minor", "base_image", "mounts", "startup_script",
                "startup_owner", "startup_env")
graders_configs = st.fixed_dictionaries(
    {key: st.sampled_from(("web", "1", "01", "basefs.tar.gz", "a b", "-x", "x" * 60))
     | json_values for key in GRADERS_KEYS[:4]}
    | {"mounts": st.lists(st.sampled_from(WORDS) | json_values, max_size=3),
       "startup_script": json_values, "startup_owner": json_values,
       "startup_env": st.sampled_from(("PORT=1;A=${PORT}", "x", "=y", ";;")) | json_values},
).flatmap(some_keys)


@fuzz
@given(body=graders_configs | objects(GRADERS_KEYS) | json_values, raw=st.booleans())
def test_graders_configuration(body: Any, raw: bool) -> None:
    text = body if raw and isinstance(body, str) else json.dumps(body)
    rejected_naming(lambda: graders.parse(text, Path("/var/lib/ctr")), ValueError,
                    lambda message: message.startswith(
                        ("not JSON", "not a JSON object", "missing ", *GRADERS_KEYS)))


MANIFEST_KEYS = ("schemaVersion", "mediaType", "config", "layers", "manifests", "digest",
                 "size", "platform", "urls")
media_types = st.sampled_from((manifest.OCI_CONFIG, *manifest.LAYERS, *manifest.MANIFESTS,
                               *manifest.INDEXES, "text/plain"))
manifests = st.fixed_dictionaries(
    {"schemaVersion": st.sampled_from((2, 1, "2")), "mediaType": media_types,
     "config": objects(MANIFEST_KEYS), "layers": st.lists(objects(MANIFEST_KEYS), max_size=2),
     "manifests": st.lists(objects(MANIFEST_KEYS), max_size=2)}).flatmap(some_keys)


@fuzz
@given(document=manifests | json_values, media_type=st.none() | media_types)
def test_image_manifests_and_indexes(document: Any, media_type: str | None) -> None:
    rejected_naming(lambda: manifest.parse(json.dumps(document).encode(), media_type),
                    manifest.ManifestError, bool)


CONFIG_KEYS = ("User", "Env", "Entrypoint", "Cmd", "WorkingDir", "Labels", "ExposedPorts",
               "Volumes", "StopSignal", "Healthcheck")


@fuzz
@given(config=objects(CONFIG_KEYS), top=objects(("architecture", "os", "rootfs", "config")),
       diff_ids=st.lists(st.sampled_from(("sha256:" + "a" * 64, "sha256:x", "")) | scalars,
                         max_size=2))
def test_image_configs(config: dict[str, Any], top: dict[str, Any], diff_ids: list[Any]) -> None:
    document = {"rootfs": {"type": "layers", "diff_ids": diff_ids}, "config": config, **top}
    rejected_naming(lambda: imageconfig.parse(json.dumps(document).encode()),
                    imageconfig.ConfigError, bool)


SYSCALL_KEYS = ("names", "name", "action", "args", "errnoRet", "includes", "excludes",
                "index", "value", "valueTwo", "op", "caps", "arches", "minKernel")


@fuzz
@given(top=objects(("defaultAction", "defaultErrnoRet", "architectures", "archMap", "flags",
                    "listenerPath", "listenerMetadata")),
       syscalls=st.lists(objects(SYSCALL_KEYS), max_size=3))
def test_seccomp_profiles(top: dict[str, Any], syscalls: list[dict[str, Any]]) -> None:
    document = {**top, "syscalls": syscalls}
    rejected_naming(lambda: seccomp.from_docker(document), seccomp.ProfileError, bool)
    rejected_naming(lambda: seccomp.from_oci(document), seccomp.ProfileError, bool)


# -- OCI runtime bundles: config.json ----------------------------------------------------------

BASE_CONFIG = template(rootless=False)  # what ctr-runtime spec writes


def _mutated(document: Any, path: tuple[Any, ...], value: Any, drop: bool) -> Any:
    """``document`` with the value at ``path`` replaced by ``value`` (or left out)."""
    if not path or not isinstance(document, (dict, list)):
        return value
    key, rest = path[0], path[1:]
    if isinstance(document, list):
        if not document:
            return [value]
        index = key % len(document) if isinstance(key, int) else 0
        copy = list(document)
        if drop and not rest:
            del copy[index]
        else:
            copy[index] = _mutated(copy[index], rest, value, drop)
        return copy
    keys = sorted(document)
    name = keys[key % len(keys)] if isinstance(key, int) and keys else key
    table = dict(document)
    if drop and not rest:
        table.pop(name, None)
    else:
        table[name] = _mutated(table.get(name), rest, value, drop)
    return table


oci_edits = st.lists(st.tuples(st.lists(st.integers(0, 40) | st.sampled_from(WORDS), min_size=1,
                                        max_size=4),
                               json_values, st.booleans()), min_size=1, max_size=3)


@fuzz
@given(edits=oci_edits)
def test_oci_config_json(edits: list[tuple[list[Any], Any, bool]]) -> None:
    """The default config.json with values anywhere in it replaced or left out: parsed, or
    refused with a BundleError that says where ("process.args: ...")."""
    document: Any = BASE_CONFIG
    for path, value, drop in edits:
        document = _mutated(document, tuple(path), value, drop)
    with tempfile.TemporaryDirectory() as bundle:
        os.mkdir(os.path.join(bundle, "rootfs"))
        rejected_naming(lambda: oci_config.parse(document, bundle=Path(bundle), name="fuzz"),
                        BundleError, lambda message: ": " in message  # "KEY: reason"
                        or message.startswith("expected an object"))  # the document itself


# -- archives: tarball and image layer members ----------------------------------------------------

NAMES = ("a", "a/b", "./a", "../a", "/a", "a/../b", "a//b", ".", "", "b/c/d", "a/")
KINDS = (tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.FIFOTYPE,
         tarfile.CHRTYPE, b"Z")
members = st.lists(st.tuples(st.sampled_from(NAMES) | st.text(max_size=6),
                             st.sampled_from(KINDS),
                             st.sampled_from((*NAMES, "/etc/passwd", "../../victim"))
                             | st.text(max_size=6),
                             st.sampled_from((0o644, 0o4755, 0o777, 0))), max_size=6)


def archive(entries: list[tuple[str, bytes, str, int]], whiteouts: bool = False) -> bytes:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, link, mode in entries:
            info = tarfile.TarInfo(f".wh.{name}" if whiteouts and kind == b"Z" else name)
            info.type, info.linkname, info.mode = (tarfile.REGTYPE if kind == b"Z" else kind,
                                                   link, mode)
            info.uid, info.gid = os.getuid(), os.getgid()  # what a user may chown to
            content = b"x" if info.isreg() else b""
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return data.getvalue()


def nothing_outside(root: Path, victim: Path) -> None:
    assert victim.read_text() == "untouched\n"
    assert sorted(p.name for p in root.iterdir()) == ["dest", "victim"]


@fuzz
@given(entries=members)
@example(entries=[("0", tarfile.DIRTYPE, "", 0o755), ("0", tarfile.REGTYPE, "", 0o644)])
@example(entries=[("a/b", tarfile.REGTYPE, "", 0o644), ("a", tarfile.REGTYPE, "", 0o644)])
def test_tarball_members(entries: list[tuple[str, bytes, str, int]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        victim = root / "victim"
        victim.write_text("untouched\n")
        source = root / "dest.tar"
        source.write_bytes(archive(entries))
        try:
            tarball.unpack(source, root / "dest")
        except tarball.ArchiveError as e:
            assert str(e).startswith(f"{source}: ")
            assert "refusing member " in str(e) or "dest" not in {p.name for p in
                                                                 root.iterdir()}
        source.unlink()
        (root / "dest").mkdir(exist_ok=True)
        nothing_outside(root, victim)


@fuzz
@given(entries=members)
@example(entries=[("a", tarfile.SYMTYPE, "", 0o644)])  # once an escaping FileNotFoundError
@example(entries=[("\0a", tarfile.REGTYPE, "", 0o644)])  # once an escaping ValueError
@example(entries=[("a", tarfile.SYMTYPE, "b\0", 0o644)])
@example(entries=[("a", tarfile.DIRTYPE, "", 0o755), ("a/b", tarfile.DIRTYPE, "", 0o755),
                  ("a", tarfile.SYMTYPE, ".", 0o644)])  # a's times set through the symlink
def test_image_layer_members(entries: list[tuple[str, bytes, str, int]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        victim = root / "victim"
        victim.write_text("untouched\n")
        (root / "dest").mkdir()
        try:
            # a whiteout is a device node, which only root may make
            layers.unpack(io.BytesIO(archive(entries, whiteouts=os.geteuid() == 0)),
                          root / "dest", "layer sha256:fuzz")
        except layers.LayerError as e:
            assert str(e).startswith("layer sha256:fuzz: "), str(e)
        nothing_outside(root, victim)

