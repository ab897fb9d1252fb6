"""libseccomp's own Python binding, as Debian ships it (``python3-seccomp``), found from any venv.

The package installs one extension module, ``seccomp.cpython-311-<arch>.so``, into the system's
dist-packages, which a virtualenv does not search. Putting that whole directory on ``sys.path``
would make every Debian Python package importable and hide missing dependencies, so only this one
module is looked up there, and only when a plain ``import seccomp`` finds none. The module's file
name carries the CPython ABI it was built for; the import machinery matches it against the running
interpreter, so a venv of another Python minor version gets a clear error rather than a crash.
"""

from __future__ import annotations

import functools
import importlib
import importlib.machinery
import importlib.util
import os
from types import ModuleType

SYSTEM_DIRS = ("/usr/lib/python3/dist-packages",)


class SeccompUnavailable(RuntimeError):
    """No libseccomp binding for this interpreter: the filter cannot be compiled."""


@functools.cache
def load() -> ModuleType:
    """The ``seccomp`` module (imported once per process)."""
    try:
        return importlib.import_module("seccomp")
    except ImportError:
        pass
    spec = importlib.machinery.PathFinder.find_spec("seccomp", list(SYSTEM_DIRS))
    if spec is None or spec.loader is None:
        raise SeccompUnavailable(
            "libseccomp's Python binding is missing: apt-get install python3-seccomp "
            f"(none in {', '.join(SYSTEM_DIRS)} for this Python's ABI, "
            f"{importlib.machinery.EXTENSION_SUFFIXES[0]})")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.cache
def identity() -> str:
    """Which libseccomp build compiles the filters, for cache keys: its module file and stamp."""
    origin = load().__file__ or "seccomp"
    stat = os.stat(origin)
    return f"{origin}:{stat.st_size}:{stat.st_mtime_ns}"
