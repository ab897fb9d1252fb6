"""Parsers for the values of a definition that mean something beyond their TOML type.

Each takes the raw TOML value and returns what the spec holds, or raises ``ValueError`` with a
reason that says what a good value looks like.
"""

from __future__ import annotations

import os
import posixpath
import re
import signal as signals
import stat
from ipaddress import IPv4Interface, IPv4Network
from pathlib import Path
from typing import Any, Literal, cast

from supervisor.config import units
from supervisor.config.reader import Invalid, Parse, size, string, string_table
from supervisor.config.spec import DEVICE_ACCESS, DeviceSpec, PortMapping, check_name
from supervisor.runtime import image as images

JOIN_PREFIX = "container:"
NETWORK_MODES = ("veth", "none", "host")

_HOSTNAME_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?")
_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\$?")
_IMAGE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_PORTS = re.compile(r"(\d+):(\d+)(?:/(tcp|udp))?")


def absolute_path(value: Any) -> str:
    path = string(value)
    if not path.startswith("/"):
        raise Invalid(f"must be an absolute path, got {path!r}")
    return posixpath.normpath(path)


def hostname(value: Any) -> str:
    """A host name the kernel takes (at most 64 bytes) made of RFC 1123 labels."""
    name = string(value)
    if not name or len(name) > 64 or not all(
        _HOSTNAME_LABEL.fullmatch(label) and len(label) <= 63 for label in name.split(".")
    ):
        raise Invalid(f"not a valid host name: {name!r} (letters, digits and '-' in "
                      "dot-separated labels, at most 64 characters)")
    return name


def user(value: Any) -> str:
    text = string(value)
    if not all(_USER.fullmatch(part) for part in text.split(":", 1)):
        raise Invalid(f"not a user: {text!r} (use a name or uid, optionally :group or :gid)")
    return text


# What execve(2) takes: no argument or variable longer than the kernel's MAX_ARG_STRLEN, and
# command and environment together well under the usual ARG_MAX of 2 MiB (the image adds some).
MAX_ARG_BYTES = 128 << 10
MAX_EXEC_BYTES = 1 << 20


def exec_bytes(strings: Any) -> int:
    """The bytes ``strings`` take on the new program's stack, as execve counts them."""
    return sum(len(text.encode()) + 1 for text in strings)


def _exec_string(text: str, what: str) -> None:
    if exec_bytes([text]) > MAX_ARG_BYTES:
        raise Invalid(f"{what} is {exec_bytes([text]) - 1} bytes long: the kernel takes at most "
                      f"{MAX_ARG_BYTES - 1}")


def environment(value: Any) -> tuple[tuple[str, str], ...]:
    variables = string_table(value)
    for name, text in variables.items():
        if not name or "=" in name or "\0" in name:
            raise Invalid("not a valid environment variable name", at=(name,))
        try:
            _exec_string(f"{name}={text}", "the variable")
        except Invalid as e:
            raise Invalid(str(e), at=(name,)) from None
    return tuple(variables.items())


def command(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise Invalid('expected a non-empty array of strings, e.g. ["/bin/httpd", "-f"]')
    for index, item in enumerate(value):
        try:
            _exec_string(string(item), "the argument")
        except Invalid as e:
            raise Invalid(str(e), at=(index,)) from None
    if not value[0]:
        raise Invalid("the program must not be empty", at=(0,))
    if exec_bytes(value) > MAX_EXEC_BYTES:
        raise Invalid(f"the command is {exec_bytes(value)} bytes long: at most {MAX_EXEC_BYTES} "
                      "with the environment")
    return tuple(value)


def memory(value: Any) -> int:
    amount = size(value)
    if amount <= 0:
        raise Invalid(f"must be more than 0 bytes, got {value!r}")
    return amount


def cpu_quota(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise Invalid(f"not a CPU quota: {value!r} (use e.g. \"50%\", \"150%\")")
    return units.parse_cpu_quota(value)


def cpu_list(value: Any) -> str:
    """A cpuset list of CPUs this host has, e.g. ``0-2,4``."""
    return str(units.on_host(units.parse_cpu_list(string(value))))


def port_mapping(value: Any) -> PortMapping:
    text = string(value)
    match = _PORTS.fullmatch(text.strip())
    if not match:
        raise Invalid(f"not a port mapping: {text!r} (use HOST:CONTAINER[/tcp|udp], "
                      'e.g. "8080:80/tcp")')
    host, container = int(match[1]), int(match[2])
    for port in (host, container):
        if not 1 <= port <= 65535:
            raise Invalid(f"port {port} in {text!r} is out of range (1-65535)")
    protocol = cast(Literal["tcp", "udp"], match[3] or "tcp")
    return PortMapping(host_port=host, container_port=container, protocol=protocol)


def port_mappings(value: Any) -> tuple[PortMapping, ...]:
    if not isinstance(value, list):
        raise Invalid('expected an array of port mappings, e.g. ["8080:80/tcp"]')
    mappings: list[PortMapping] = []
    for index, item in enumerate(value):
        try:
            mapping = port_mapping(item)
        except Invalid as e:
            raise Invalid(str(e), at=(index,)) from None
        if any((m.host_port, m.protocol) == (mapping.host_port, mapping.protocol)
               for m in mappings):
            raise Invalid(f"host port {mapping.host_port}/{mapping.protocol} is mapped twice",
                          at=(index,))
        mappings.append(mapping)
    return tuple(mappings)


def address(pool: str) -> Parse[str]:
    """A static address the pool can give: inside it, not its network, broadcast or gateway
    (first) address. As in ``runtime.network.ipam`` only the address counts, the prefix is the
    pool's; that module is not imported here because it loads pyroute2 (about 100 ms)."""
    network = IPv4Network(pool)
    gateway = network.network_address + 1
    example = f"{gateway + 1}/{network.prefixlen}"

    def parse(value: Any) -> str:
        text = string(value)
        try:
            interface = IPv4Interface(text.strip())
        except ValueError:
            raise Invalid(f"not an IPv4 address in CIDR notation: {text!r} "
                          f"(use e.g. {example})") from None
        ip = interface.ip
        if ip not in network:
            raise Invalid(f"{ip} is outside the address pool {network}")
        if ip in (network.network_address, network.broadcast_address):
            raise Invalid(f"{ip} is the network or broadcast address of the pool {network}")
        if ip == gateway:
            raise Invalid(f"{ip} is the gateway of the pool {network}")
        return str(interface)
    return parse


def join(value: Any) -> str:
    """``container:OTHER``, naming a definition whose namespace is joined."""
    text = string(value)
    if not text.startswith(JOIN_PREFIX):
        raise Invalid(f'expected "container:NAME", got {text!r}')
    try:
        check_name(text.removeprefix(JOIN_PREFIX))
    except ValueError as e:
        raise Invalid(f"{text!r}: {e}") from None
    return text


def network_mode(value: Any) -> str:
    text = string(value)
    if text.startswith(JOIN_PREFIX):
        return join(text)
    if text not in NETWORK_MODES:
        raise Invalid(f'must be "veth", "none", "host" or "container:NAME", got {text!r}')
    return text


def stop_signal(value: Any) -> int:
    """A signal by name (``SIGTERM``, ``TERM``) or number."""
    if isinstance(value, int) and not isinstance(value, bool):
        if not 1 <= value <= signals.SIGRTMAX:
            raise Invalid(f"not a signal number: {value} (1-{int(signals.SIGRTMAX)})")
        return value
    name = string(value).strip().upper()
    try:
        return int(signals.Signals[name if name.startswith("SIG") else f"SIG{name}"])
    except KeyError:
        raise Invalid(f"not a signal: {value!r} (use e.g. SIGTERM, SIGQUIT, SIGINT)") from None


def image(data_dir: Path) -> Parse[str]:
    """An image that exists: a name under DATA_DIR/images (with one of the suffixes the runtime
    looks for) or an absolute path. Only stats: tarballs are unpacked at start, not here."""
    directory = data_dir / "images"

    def parse(value: Any) -> str:
        ref = string(value)
        if "/" in ref:
            if not ref.startswith("/"):
                raise Invalid(f"an image path must be absolute, got {ref!r}")
            if not Path(ref).exists():
                raise Invalid(f"image {ref!r} not found: {ref} does not exist")
            return ref
        if not _IMAGE_NAME.fullmatch(ref):
            raise Invalid(f"not an image name: {ref!r} (letters, digits, '_', '.', '-'; "
                          "or an absolute path)")
        if not any((directory / f"{ref}{suffix}").exists() for suffix in images.SUFFIXES):
            looked_for = ", ".join(f"{ref}{suffix}" for suffix in images.SUFFIXES)
            raise Invalid(f"image {ref!r} not found in {directory} (looked for {looked_for})")
        return ref
    return parse


def device_node(value: Any) -> str:
    """The host path of a character or block device node."""
    path = absolute_path(value)
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise Invalid(f"device {path}: {exc.strerror}") from None
    if not (stat.S_ISCHR(mode) or stat.S_ISBLK(mode)):
        raise Invalid(f"{path} is not a device node (character or block)")
    return path


def device_target(value: Any) -> str:
    """Where a device appears inside: under /dev, as every program looks for one there."""
    path = absolute_path(value)
    if not path.startswith("/dev/") or path.count("/") < 2 or path.endswith("/"):
        raise Invalid(f"a device's path inside must be under /dev/, got {path!r}")
    return path


def device_permissions(value: Any) -> str:
    """Any of r (read), w (write), m (mknod), each once: docker's --device access."""
    text = string(value)
    if not text or set(text) - set(DEVICE_ACCESS) or len(set(text)) != len(text):
        raise Invalid(f"not device permissions: {text!r} (any of r, w, m, e.g. \"rwm\", "
                      "\"r\")")
    return text


def device(text: str) -> DeviceSpec:
    """docker's ``--device HOST[:CONTAINER][:PERMISSIONS]``."""
    parts = text.split(":")
    if len(parts) > 3 or not parts[0]:
        raise Invalid(f"not a device: {text!r} (use HOST[:CONTAINER][:PERMISSIONS], "
                      "e.g. /dev/fuse or /dev/sdb:/dev/xvdb:r)")
    path = device_node(parts[0])
    target, permissions = path, DEVICE_ACCESS
    if len(parts) == 3:
        target, permissions = device_target(parts[1]), device_permissions(parts[2])
    elif len(parts) == 2:  # the second part is a path or permissions, as docker reads it
        if parts[1].startswith("/"):
            target = device_target(parts[1])
        else:
            permissions = device_permissions(parts[1])
    return DeviceSpec(path=path, target=target, permissions=permissions)
