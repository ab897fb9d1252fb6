"""System-call filter profiles as users write them (docker/podman JSON, the OCI spec's
``linux.seccomp``) and ctr's default, as data: what the runtime compiles and loads
(``supervisor.runtime.seccomp``). ``None`` stands for "unconfined"."""

from supervisor.model.seccomp.default import DEFAULT
from supervisor.model.seccomp.parse import ProfileError, from_docker, from_oci, load_profile
from supervisor.model.seccomp.profile import Profile, summary

__all__ = ["DEFAULT", "Profile", "ProfileError", "from_docker", "from_oci", "load_profile",
           "summary"]
