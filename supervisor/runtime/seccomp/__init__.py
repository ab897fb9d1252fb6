"""The system-call filter of ctr containers, compiled to BPF and loaded.

A profile (the model's: ``supervisor.model.seccomp``, re-exported here: :data:`DEFAULT`,
:func:`load_profile` for docker/podman's JSON files, :func:`from_oci` for a bundle's
``linux.seccomp``) is compiled for a container's capability set by
:func:`compile_profile` into a :class:`Program` (cached), which the container's PID 1 and every
``ctrctl exec`` process load with :func:`install` as their last step before execve, after
``no_new_privs``. ``None`` stands for "unconfined"; :func:`summary` says which profile is in
force.

The binding: libseccomp's own Python binding (``src/python`` of libseccomp, Cython), as Debian
ships it in ``python3-seccomp`` (see :mod:`.binding` for how a venv finds it). It is maintained
with libseccomp itself and released with it, Debian builds it against the very libseccomp it
ships (2.5.4, statically) and carries its security fixes, and its API is what the libseccomp
documentation describes. The alternatives: PyPI's ``pyseccomp`` is a ctypes copy of that API by
one author, with no release since 2021; PyPI has no upstream build (building it in the venv would
need libseccomp's source tree, Cython and a compiler at install time); other packages wrap
their own BPF. Only compiling needs the binding (:func:`compile_profile`, :func:`cache_key`);
parsing and :func:`install` do not.
"""

from supervisor.model.seccomp.arches import UnsupportedMachine
from supervisor.model.seccomp.default import DEFAULT
from supervisor.model.seccomp.parse import ProfileError, from_docker, from_oci, load_profile
from supervisor.model.seccomp.profile import Profile, summary
from supervisor.runtime.seccomp.binding import SeccompUnavailable
from supervisor.runtime.seccomp.compiler import cache_key, compile_profile, compiled
from supervisor.runtime.seccomp.program import Program, install

__all__ = [
    "DEFAULT",
    "Profile",
    "ProfileError",
    "Program",
    "SeccompUnavailable",
    "UnsupportedMachine",
    "cache_key",
    "compile_profile",
    "compiled",
    "from_docker",
    "from_oci",
    "install",
    "load_profile",
    "summary",
]
