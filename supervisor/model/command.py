"""What a container's process is started with: its command and environment, within what
execve(2) takes."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from supervisor.model.errors import Invalid
from supervisor.model.values import items, string, string_table

# No argument or variable longer than the kernel's MAX_ARG_STRLEN, and command and environment
# together well under the usual ARG_MAX of 2 MiB (the image adds some).
MAX_ARG_BYTES = 128 << 10
MAX_EXEC_BYTES = 1 << 20


def exec_bytes(strings: Iterable[str]) -> int:
    """The bytes ``strings`` take on the new program's stack, as execve counts them."""
    return sum(len(text.encode()) + 1 for text in strings)


def _exec_string(text: str, what: str) -> str:
    if exec_bytes([text]) > MAX_ARG_BYTES:
        raise Invalid(f"{what} is {exec_bytes([text]) - 1} bytes long: the kernel takes at most "
                      f"{MAX_ARG_BYTES - 1}")
    return text


def _argument(value: Any) -> str:
    return _exec_string(string(value), "the argument")


def command(value: Any) -> tuple[str, ...]:
    """A non-empty array of strings, the program first."""
    if not isinstance(value, list | tuple) or not value:
        raise Invalid('expected a non-empty array of strings, e.g. ["/bin/httpd", "-f"]')
    argv = tuple(items(_argument, list(value)))
    if not argv[0]:
        raise Invalid("the program must not be empty", at=(0,))
    if exec_bytes(argv) > MAX_EXEC_BYTES:
        raise Invalid(f"the command is {exec_bytes(argv)} bytes long: at most {MAX_EXEC_BYTES} "
                      "with the environment")
    return argv


def entrypoint(value: Any) -> tuple[str, ...]:
    """What replaces an image's Entrypoint: an array as ``command`` takes it, or as podman's
    ``--entrypoint`` writes it, a JSON array or one program; empty (``[]``, ``""``) for none."""
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:
            value = json.loads(value)
        except ValueError as e:
            raise Invalid(f"not a JSON array of strings: {e}") from None
    if isinstance(value, str):
        value = [value] if value else []
    if isinstance(value, list | tuple) and not value:
        return ()
    return command(value)


def variable(name: str, value: str) -> tuple[str, str]:
    """One environment variable, ``NAME=VALUE`` as execve gets it."""
    if not name or "=" in name or "\0" in name:
        raise Invalid("not a valid environment variable name", at=(name,))
    try:
        _exec_string(f"{name}={string(value)}", "the variable")
    except Invalid as e:
        raise Invalid(str(e), at=(name,)) from None
    return name, value


def environment(value: Any) -> tuple[tuple[str, str], ...]:
    """A table of variables (TOML, JSON)."""
    return tuple(variable(name, text) for name, text in string_table(value).items())


def assignment(text: str) -> tuple[str, str]:
    """``NAME=VALUE``, as ``--env`` and an image's or OCI config's Env write a variable."""
    name, equals, value = string(text).partition("=")
    if not equals or not name:
        raise Invalid(f"not NAME=VALUE: {text!r}")
    return variable(name, value)


def check_exec_size(argv: Iterable[str], env: Iterable[tuple[str, str]]) -> None:
    """Command and environment together within what execve takes here."""
    total = exec_bytes(argv) + exec_bytes(f"{k}={v}" for k, v in env)
    if total > MAX_EXEC_BYTES:
        raise Invalid(f"command and environment take {total} bytes: execve takes at most "
                      f"{MAX_EXEC_BYTES} here")
