"""An OCI bundle's config.json (runtime spec 1.0 to 1.2, Linux) as the one container model.

Every value goes through the parser a TOML definition's would (the command, the environment, the
limits, the host name), so a bad one reads the same whichever way it came; every refusal names
the member. What the model has no field for is a field of its own there (the rlimits, the
capability sets, the sysctls, the hooks...), and what ctr cannot honour (AppArmor, SELinux, Intel
RDT, personality, a time namespace) is an error when set, never ignored.

How the bundle's parts map:

- ``root`` is the image, used in place (``RootSpec.in_place``), and ``mounts`` are all the mounts
  there are (``system_mounts`` false): ctr adds only the default device nodes in /dev.
- ``linux.namespaces``: a kind listed without ``path`` is made new, with one joined, one left out
  stays the host's (``NamespaceJoins.paths``, ``.host``); a network not the host's is "none" to
  ctr (the engine that calls ctr-runtime sets it up), and a new user namespace takes its maps
  from ``uidMappings``/``gidMappings``; one joined by path has its own (mappings given with it
  must be the same).
- Without ``process.capabilities`` the process keeps every capability and without
  ``linux.seccomp`` it runs unfiltered, as runc runs such a bundle.
"""

from __future__ import annotations

import json
import re
import socket
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from supervisor.model import capabilities as caps
from supervisor.model.cgroups import cgroup_path, systemd_scope
from supervisor.model.command import assignment
from supervisor.model.devices import device_target
from supervisor.model.errors import Invalid
from supervisor.model.idmap import IdMap, id_map
from supervisor.model.mounts import mount_options, propagation
from supervisor.model.names import hostname
from supervisor.model.seccomp import ProfileError, from_oci
from supervisor.model.security import UNCONFINED, paths
from supervisor.model.spec import (
    CgroupSpec,
    ContainerSpec,
    DeviceNode,
    Hook,
    Hooks,
    MountSpec,
    MountType,
    NamespaceJoins,
    NetworkSpec,
    RootSpec,
    SecuritySpec,
)
from supervisor.model.sysctl import namespace_of, sysctl
from supervisor.model.values import (
    absolute_path,
    boolean,
    integer,
    items,
    one_of,
    string,
    string_list,
    string_table,
)
from supervisor.oci import process as processes
from supervisor.oci import resources
from supervisor.oci.document import BundleError, Obj, error

CONFIG = "config.json"
VERSION = "1.2.0"  # the newest runtime spec implemented
_VERSION_RE = re.compile(r"(\d+)\.(\d+)\.(\d+)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?")
_TOP = ("ociVersion", "root", "mounts", "process", "hostname", "domainname", "hooks",
        "annotations", "linux", "solaris", "windows", "vm", "zos")
_LINUX = ("devices", "uidMappings", "gidMappings", "sysctl", "resources", "cgroupsPath",
          "namespaces", "maskedPaths", "readonlyPaths", "rootfsPropagation", "mountLabel",
          "seccomp", "intelRdt", "personality", "timeOffsets", "netDevices")
_MOUNT = ("destination", "source", "type", "options", "uidMappings", "gidMappings")
_HOOKS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart",
          "poststop")
_NAMESPACES = {"pid": "pid", "network": "net", "mount": "mnt", "ipc": "ipc", "uts": "uts",
               "user": "user", "cgroup": "cgroup", "time": "time"}
_FILE_SYSTEMS: tuple[MountType, ...] = ("tmpfs", "proc", "sysfs", "devpts", "mqueue", "cgroup",
                                        "cgroup2")
_MAPPING = ("containerID", "hostID", "size")
_id = integer(0, 2**32 - 2)


@dataclass(frozen=True)
class Bundle:
    """A bundle read: its directory, the spec version it claims, the container it describes,
    and what it holds that the spec does not define (ignored, as the spec says: say so)."""

    path: Path
    oci_version: str
    spec: ContainerSpec
    warnings: tuple[str, ...] = ()


def load(bundle: Path, *, name: str, systemd_cgroup: bool = False) -> Bundle:
    """The bundle in directory ``bundle``; ``name`` is the container's name in ctr's terms."""
    path = bundle / CONFIG
    try:
        document = json.loads(path.read_bytes())
    except OSError as exc:
        raise BundleError(f"{path}: {exc.strerror}") from None
    except (ValueError, RecursionError) as exc:
        raise BundleError(f"{path}: not JSON: {exc}") from None
    return parse(document, bundle=bundle, name=name, systemd_cgroup=systemd_cgroup)


def oci_version(value: Any) -> str:
    text = string(value)
    match = _VERSION_RE.fullmatch(text)
    if not match:
        raise Invalid(f"not a version: {text!r} (SemVer, e.g. {VERSION})")
    if int(match[1]) != 1 or int(match[2]) > 2:
        raise Invalid(f"{text}: ctr-runtime implements the runtime spec 1.0 to 1.2")
    return text


def parse(document: Any, *, bundle: Path, name: str, systemd_cgroup: bool = False) -> Bundle:
    warnings: list[str] = []
    top = Obj(document, (), _TOP, warnings)
    version = top.required("ociVersion", oci_version)
    for other in ("solaris", "windows", "vm", "zos"):
        top.unsupported(other, f"a config for {other}")
    linux = top.obj("linux", _LINUX) or Obj({}, ("linux",), _LINUX, warnings)
    for key, what in (("mountLabel", "an SELinux mount label"), ("intelRdt", "Intel RDT"),
                      ("personality", "an execution domain (personality)"),
                      ("timeOffsets", "a time namespace"),
                      ("netDevices", "moving network devices into the container")):
        linux.unsupported(key, what)
    process_obj = top.obj("process", processes.KNOWN)
    if process_obj is None:
        raise top.fail("process", "missing: ctr-runtime runs a bundle's process")
    process = processes.parse(process_obj)
    root = _root(top, bundle)
    joins = _namespaces(linux)
    if "mnt" in dict(joins.paths) and top.array("mounts"):
        raise top.fail("mounts", "cannot be made with the mount namespace joined: the container "
                       "lives in that namespace's root, with its mounts")
    kept = set(joins.host)
    limits = resources.parse(linux.obj("resources", resources.KNOWN)
                             or Obj({}, ("linux", "resources"), resources.KNOWN, warnings))
    spec = ContainerSpec(
        name=name,
        image=str(root[0]),
        command=process.args,
        entrypoint=(),
        hostname=_uts_name(top, "hostname", kept),
        user=process.user,
        environment=process.environment,
        working_dir=process.cwd,
        read_only=root[1],
        mounts=tuple(_mount(entry, bundle, joins.user) for entry in top.objects("mounts", _MOUNT)),
        network=NetworkSpec(mode="host" if "net" in kept else "none"),
        resources=limits.resources,
        namespaces=joins,
        security=_security(linux, process, bundle),
        root=RootSpec(in_place=True, propagation=linux.get("rootfsPropagation", propagation),
                      system_mounts=False),
        process=process.settings,
        device_nodes=tuple(_device(entry) for entry in linux.objects(
            "devices", ("path", "type", "major", "minor", "fileMode", "uid", "gid"))),
        cgroup=CgroupSpec(
            path=None if systemd_cgroup else linux.get("cgroupsPath", cgroup_path),
            scope=linux.get("cgroupsPath", systemd_scope) if systemd_cgroup else None,
            files=limits.files,
            device_rules=limits.device_rules,
        ),
        sysctl=_sysctl(linux, kept),
        domainname=_uts_name(top, "domainname", kept),
        hooks=_hooks(top.obj("hooks", _HOOKS)),
        annotations=tuple(top.value_or("annotations", string_table, {}).items()),
    )
    return Bundle(bundle, version, spec, tuple(warnings))


def _root(top: Obj, bundle: Path) -> tuple[Path, bool]:
    root = top.obj("root", ("path", "readonly"))
    if root is None:
        raise top.fail("root", "missing: a Linux container needs a root file system")
    path = bundle / root.required("path", string)
    if not path.is_dir():
        raise root.fail("path", f"{path} is not a directory")
    return path.resolve(), root.value_or("readonly", boolean, False)


def _uts_name(top: Obj, key: str, kept: set[str]) -> str | None:
    """The host or domain name; the host's stays unless one is given (a new UTS namespace starts
    with the host's names, and the spec leaves them unless asked)."""
    value = top.get(key, hostname)
    if value is not None and "uts" in kept:
        raise top.fail(key, "cannot be set: the container shares the host's UTS namespace")
    if value is None and key == "hostname":
        return socket.gethostname()
    return value


def _namespaces(linux: Obj) -> NamespaceJoins:
    given: dict[str, str | None] = {}
    for entry in linux.objects("namespaces", ("type", "path")):
        kind = _NAMESPACES[entry.required("type", one_of(*_NAMESPACES))]
        if kind in given:
            raise entry.fail("type", f"the {entry.value['type']} namespace is listed twice")
        if kind == "time":
            raise entry.fail("type", "a time namespace is not supported by ctr-runtime")
        given[kind] = entry.get("path", absolute_path)
    if "mnt" not in given:
        raise linux.fail("namespaces", "a mount namespace is required: ctr-runtime does not "
                         "build a container in the host's")
    user_ids = None
    if "user" in given:
        # Joined by path (a pod's, as containerd hands one over), the namespace has its maps
        # already: given ones must be the same, none is taken from it (runtime/userns.py).
        if given["user"] is None or linux.array("uidMappings") or linux.array("gidMappings"):
            user_ids = _id_maps(linux, root=True)
    else:
        for key in ("uidMappings", "gidMappings"):
            if linux.array(key):
                raise linux.fail(key, "given without a user namespace")
    return NamespaceJoins(
        user="user" in given,
        paths=tuple((kind, path) for kind, path in given.items() if path is not None),
        host=tuple(kind for kind in _NAMESPACES.values()
                   if kind not in given and kind not in ("user", "time")),
        user_ids=user_ids,
    )


def _id_maps(obj: Obj, *, root: bool) -> IdMap | None:
    """``uidMappings`` and ``gidMappings`` of ``obj``: the user namespace's (``root``: container
    id 0 must be mapped; several ranges as podman's ``--uidmap`` gives them), or a mount's (both
    or neither), each checked as the kernel would check it."""
    lines = []
    for key in ("uidMappings", "gidMappings"):
        lines.append([(entry.required("containerID", _id), entry.required("hostID", _id),
                       entry.required("size", integer(1, 2**32 - 1)))
                      for entry in obj.objects(key, _MAPPING)])
    if not root and not any(lines):
        return None
    try:
        return id_map(*lines, root=root)
    except Invalid as exc:
        kind, *at = exc.at
        key = "uidMappings" if kind == "uids" else "gidMappings"
        raise error(Invalid(str(exc), tuple(at)), (*obj.at, key)) from None


def _destination(value: Any) -> str:
    """Absolute inside the container; a relative one is taken from / (as runc does)."""
    text = string(value)
    target = absolute_path(text if text.startswith("/") else f"/{text}")
    if target == "/":
        raise Invalid("must not be / (the bundle's root is the container's root)")
    return target


def _mount(obj: Obj, bundle: Path, user_namespace: bool) -> MountSpec:
    target = obj.required("destination", _destination)
    words = obj.array("options")
    kind = obj.get("type", string) or ""
    # A bind is type "bind", or no type (or "none") with a bind option, as mount(8) reads it.
    bind = kind == "bind" or (kind in ("none", "") and any(w in ("bind", "rbind") for w in words))
    if not bind and kind not in _FILE_SYSTEMS:
        raise obj.fail("type", f"{kind or 'missing'}: ctr-runtime mounts bind, "
                       f"{', '.join(_FILE_SYSTEMS)}")
    options = obj.get("options", lambda value: mount_options(value, bind=bind))
    source = obj.get("source", string) or ""
    if bind:
        if not source:
            raise obj.fail("source", "missing: a bind mount needs a source")
        source = str(bundle / source)  # an absolute source stays what it is
    ids = _id_maps(obj, root=False)
    idmap = None if options is None else options.idmap
    if ids is not None or idmap:
        if not bind:
            raise obj.fail("uidMappings" if ids else "options",
                           "only a bind mount can be idmapped by ctr-runtime")
        if not user_namespace:
            raise obj.fail("uidMappings" if ids else "options", "an idmapped mount needs the "
                           "container's user namespace (ctr-runtime hands mounts over to it)")
    return MountSpec(
        target=target,
        source=source,
        type="bind" if bind else kind,  # type: ignore[arg-type]  # in _FILE_SYSTEMS
        read_only=options is not None and options.read_only,
        flags=() if options is None else options.flags,
        data=() if options is None else options.data,
        propagation=None if options is None else options.propagation,
        recursive=options is not None and options.bind == "rbind",
        idmap=idmap or ("idmap" if ids else None),
        id_map=ids,
    )


def _device(obj: Obj) -> DeviceNode:
    kind = obj.required("type", one_of("c", "b", "u", "p"))
    number = integer(0, 2**32 - 1)
    if kind == "p":
        major = minor = 0
    else:
        major, minor = obj.required("major", number), obj.required("minor", number)
    return DeviceNode(
        path=obj.required("path", device_target),
        type=kind,  # type: ignore[arg-type]  # one_of checked it
        major=major,
        minor=minor,
        mode=obj.value_or("fileMode", integer(0, 0o7777), 0o666),
        uid=obj.value_or("uid", _id, 0),
        gid=obj.value_or("gid", _id, 0),
    )


def _sysctl(linux: Obj, kept: set[str]) -> tuple[tuple[str, str], ...]:
    settings = linux.value_or("sysctl", _sysctls, ())
    for name, _ in settings:
        if namespace_of(name) in kept:
            raise linux.fail("sysctl", f"{name}: the container shares the host's "
                             f"{namespace_of(name)} namespace: setting it would change the host")
    return settings


def _sysctls(value: Any) -> tuple[tuple[str, str], ...]:
    parsed = []
    for key, text in string_table(value).items():
        try:
            parsed.append(sysctl(key, text))
        except Invalid as exc:
            raise Invalid(str(exc), at=(key,)) from None
    return tuple(parsed)


def _security(linux: Obj, process: processes.Process, bundle: Path) -> SecuritySpec:
    profile = None
    if linux.has("seccomp"):
        try:
            profile = from_oci(linux.value["seccomp"])
        except ProfileError as exc:
            raise BundleError(f"linux.seccomp.{exc}") from None
    return process_security(process, warnings=linux.warnings, base=SecuritySpec(
        seccomp=UNCONFINED if profile is None else str(bundle / CONFIG),
        seccomp_profile=profile,
        masked_paths=linux.value_or("maskedPaths", paths, ()),
        read_only_paths=linux.value_or("readonlyPaths", paths, ()),
    ))


def process_security(process: processes.Process, base: SecuritySpec,
                     warnings: list[str]) -> SecuritySpec:
    """``base`` with the capabilities and no_new_privileges of ``process`` (a container's, or
    one exec'd into it with ``--process``). Sets capset(2) would refuse are errors; ambient
    capabilities outside the inheritable or permitted set, which the kernel does not raise
    (``runc spec`` writes some), are left out with a warning, as runc leaves them out."""
    given = process.capabilities
    if given is None:
        added: tuple[str, ...] = (caps.ALL,)
    else:
        for key, inside, outside, what in (
                ("effective", given.effective, given.permitted, "the permitted set"),
                ("inheritable", given.inheritable, given.bounding, "the bounding set")):
            if extra := inside & ~outside:
                raise BundleError(f"process.capabilities.{key}: must lie in {what} (not: "
                                  f"{', '.join(_names(extra))})")
        if left := given.ambient & ~(given.permitted & given.inheritable):
            warnings.append(f"process.capabilities.ambient: {', '.join(_names(left))} outside "
                            "the permitted and inheritable sets: the kernel raises no such "
                            "ambient capability, so the process does not get it")
            given = replace(given, ambient=given.ambient & ~left)
        added = _names(given.bounding)
    return replace(base, capabilities_add=added, capabilities_drop=(caps.ALL,),
                   capability_sets=given, no_new_privileges=process.no_new_privileges)


def _names(mask: int) -> tuple[str, ...]:
    return tuple(name for name, bit in caps.CAPABILITIES.items() if mask & (1 << bit))


def _hooks(obj: Obj | None) -> Hooks:
    if obj is None:
        return Hooks()
    found = {}
    for key in _HOOKS:
        found[re.sub(r"[A-Z]", lambda m: "_" + m[0].lower(), key)] = tuple(
            _hook(entry) for entry in obj.objects(key, ("path", "args", "env", "timeout")))
    return Hooks(**found)


def _hook(obj: Obj) -> Hook:
    return Hook(
        path=obj.required("path", absolute_path),
        args=obj.value_or("args", string_list, ()),
        env=tuple(obj.value_or("env", lambda v: items(assignment, _strings(v)), [])),
        timeout=obj.get("timeout", integer(1)),
    )


def _strings(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise Invalid('expected an array of "NAME=VALUE" strings')
    return value
