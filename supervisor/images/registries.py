"""``registries.conf`` (containers-registries.conf(5), version 2): where a reference is pulled from.

Read as podman reads it: ``$CONTAINERS_REGISTRIES_CONF`` alone when set (so tests bring their own
file), else ``/etc/containers/registries.conf`` followed by ``registries.conf.d/*.conf`` in name
order, later files replacing the keys they set and ``[[registry]]`` entries of the same prefix.
For one reference the longest matching ``prefix`` wins; its mirrors are tried before its
``location``; a ``blocked`` registry is refused; ``insecure`` allows plain HTTP and unverified
TLS. Short names go through ``[aliases]`` first, then ``unqualified-search-registries``: with
``short-name-mode = "enforcing"`` (podman's default) more than one candidate registry is
ambiguous, since ctr never prompts.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from supervisor.images import reference
from supervisor.images.reference import Reference

SYSTEM_FILE = Path("/etc/containers/registries.conf")
SHORT_NAME_MODES = ("enforcing", "permissive", "disabled")
_Fail = Callable[[str, str], "RegistriesConfError"]


class RegistriesConfError(ValueError):
    """A registries.conf that cannot be used; the message names the file and the key."""


class ShortNameError(LookupError):
    """A short name that names no single registry (unknown, or ambiguous)."""


@dataclass(frozen=True)
class Endpoint:
    """One place to pull from: ``location`` is ``HOST[:PORT][/PATH]``."""

    location: str
    insecure: bool = False

    @property
    def host(self) -> str:
        return self.location.partition("/")[0]

    def rewrite(self, ref: Reference, prefix: str) -> Reference:
        """``ref`` with ``prefix`` replaced by this endpoint's location."""
        name = ref.repository
        rest = name[len(prefix):] if prefix else ""
        host, _, path = f"{self.location}{rest}".partition("/")
        return Reference(host, path, ref.tag, ref.digest)


@dataclass(frozen=True)
class Registry:
    """A ``[[registry]]`` table."""

    prefix: str
    location: str
    insecure: bool = False
    blocked: bool = False
    mirrors: tuple[Endpoint, ...] = ()
    mirror_by_digest_only: bool = False


@dataclass(frozen=True)
class Source:
    """A reference as it is to be fetched from one endpoint, in the order to try them."""

    ref: Reference
    insecure: bool


@dataclass(frozen=True)
class RegistriesConf:
    search: tuple[str, ...] = ()
    registries: tuple[Registry, ...] = ()
    aliases: Mapping[str, str] = field(default_factory=dict)
    short_name_mode: str = "enforcing"
    files: tuple[Path, ...] = ()

    def registry_for(self, ref: Reference) -> Registry | None:
        """The ``[[registry]]`` whose prefix matches ``ref`` best (the longest), if any."""
        name = str(ref)
        best: Registry | None = None
        for registry in self.registries:
            if _matches(registry.prefix, name) and (
                    best is None or len(registry.prefix) > len(best.prefix)):
                best = registry
        return best

    def sources(self, ref: Reference) -> list[Source]:
        """Where to fetch the qualified ``ref``: mirrors first, then the location."""
        registry = self.registry_for(ref)
        if registry is None:
            return [Source(ref, False)]
        if registry.blocked:
            raise PermissionError(
                f"registry {registry.prefix!r} is blocked in {_names(self.files)}")
        primary = Endpoint(registry.location, registry.insecure)
        mirrors = registry.mirrors if ref.digest or not registry.mirror_by_digest_only else ()
        return [Source(endpoint.rewrite(ref, registry.prefix), endpoint.insecure)
                for endpoint in (*mirrors, primary)]

    def candidates(self, ref: Reference) -> list[Reference]:
        """The qualified references a short name may mean, in the order to try them."""
        if not ref.is_short:
            return [ref]
        alias = self.aliases.get(ref.path)
        if alias is not None:
            target = reference.parse(alias)
            return [Reference(target.domain, target.path, ref.tag, ref.digest)]
        if not self.search:
            raise ShortNameError(
                f"short name {str(ref)!r}: no unqualified-search-registries in "
                f"{_names(self.files)}; use a fully qualified name (REGISTRY/NAME)")
        if len(self.search) > 1 and self.short_name_mode == "enforcing":
            raise ShortNameError(
                f"short name {str(ref)!r} is ambiguous: it may be on any of "
                f"{', '.join(self.search)} (short-name-mode is enforcing); use a fully "
                "qualified name or an alias")
        return [ref.qualify(domain) for domain in self.search]

    def insecure(self, host: str) -> bool:
        """Whether ``host`` (a login target, say) is marked insecure."""
        return any(r.insecure and r.location.partition("/")[0] == host for r in self.registries)


def _names(files: tuple[Path, ...]) -> str:
    return ", ".join(str(f) for f in files) or "(no registries.conf)"


def _matches(prefix: str, name: str) -> bool:
    """A prefix matches at a component boundary; ``*.example.com`` matches any subdomain."""
    if prefix.startswith("*."):
        host = name.partition("/")[0].partition(":")[0]
        return host.endswith(prefix[1:])
    if not name.startswith(prefix):
        return False
    rest = name[len(prefix):]
    return not rest or rest[0] in "/:@" or prefix.endswith("/")


def files(environ: Mapping[str, str] = os.environ) -> list[Path]:
    """The files podman would read, in order (missing ones left out)."""
    override = environ.get("CONTAINERS_REGISTRIES_CONF")
    if override:
        return [Path(override)]
    found = [SYSTEM_FILE] if SYSTEM_FILE.is_file() else []
    dropins = SYSTEM_FILE.with_name(SYSTEM_FILE.name + ".d")
    return found + sorted(dropins.glob("*.conf"))


def load(paths: list[Path] | None = None) -> RegistriesConf:
    """Merge ``paths`` (default: ``files()``) into one configuration."""
    paths = files() if paths is None else paths
    merged: dict[str, Any] = {"registries": {}, "aliases": {}}
    for path in paths:
        try:
            document = tomllib.loads(path.read_text())
        except FileNotFoundError:
            continue
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise RegistriesConfError(f"{path}: {e}") from e
        _merge(path, document, merged)
    return RegistriesConf(
        search=tuple(merged.get("search", ())),
        registries=tuple(merged["registries"].values()),
        aliases=merged["aliases"],
        short_name_mode=merged.get("mode", "enforcing"),
        files=tuple(paths),
    )


def _merge(path: Path, document: dict[str, Any], merged: dict[str, Any]) -> None:
    def fail(key: str, why: str) -> RegistriesConfError:
        return RegistriesConfError(f"{path}: {key}: {why}")

    if "registries" in document and "registry" not in document:
        raise fail("registries", "version 1 format ([registries.search] ...) is not supported; "
                   "use unqualified-search-registries and [[registry]]")
    if "unqualified-search-registries" in document:
        search = document["unqualified-search-registries"]
        if not isinstance(search, list) or not all(isinstance(s, str) for s in search):
            raise fail("unqualified-search-registries", "must be a list of host names")
        merged["search"] = search
    if "short-name-mode" in document:
        mode = document["short-name-mode"]
        if mode not in SHORT_NAME_MODES:
            raise fail("short-name-mode", f"must be one of {', '.join(SHORT_NAME_MODES)}")
        merged["mode"] = mode
    aliases = document.get("aliases", {})
    if not isinstance(aliases, dict) or not all(isinstance(v, str) for v in aliases.values()):
        raise fail("aliases", "must be a table of name = \"REGISTRY/NAME\"")
    merged["aliases"].update(aliases)
    tables = document.get("registry", [])
    if not isinstance(tables, list):
        raise fail("registry", "must be an array of tables ([[registry]])")
    for i, table in enumerate(tables):
        def fail_in(key: str, why: str, i: int = i) -> RegistriesConfError:
            return fail(f"registry[{i}].{key}", why)

        registry = _registry(table, fail_in)
        merged["registries"][registry.prefix] = registry


def _registry(table: dict[str, Any], fail: _Fail) -> Registry:
    known = {"prefix", "location", "insecure", "blocked", "mirror", "mirror-by-digest-only"}
    for key in table:
        if key not in known:
            raise fail(key, "unknown key")
    location = table.get("location", "")
    prefix = table.get("prefix", location)
    if not isinstance(prefix, str) or not isinstance(location, str) or not (prefix or location):
        raise fail("prefix", "a [[registry]] needs a prefix or a location (strings)")
    mirrors = []
    for j, mirror in enumerate(table.get("mirror", [])):
        if not isinstance(mirror.get("location"), str):
            raise fail(f"mirror[{j}].location", "missing or not a string")
        mirrors.append(Endpoint(mirror["location"], _flag(mirror, "insecure", fail)))
    return Registry(prefix, location or prefix, _flag(table, "insecure", fail),
                    _flag(table, "blocked", fail), tuple(mirrors),
                    _flag(table, "mirror-by-digest-only", fail))


def _flag(table: dict[str, Any], key: str, fail: _Fail) -> bool:
    value = table.get(key, False)
    if not isinstance(value, bool):
        raise fail(key, "must be true or false")
    return value
