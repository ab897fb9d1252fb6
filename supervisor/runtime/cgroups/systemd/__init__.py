"""The systemd cgroup driver: transient scopes over D-Bus (see ``driver``)."""

from supervisor.runtime.cgroups.systemd.driver import SystemdCgroup, SystemdDriver

__all__ = ["SystemdCgroup", "SystemdDriver"]
