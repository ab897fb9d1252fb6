"""The systemd cgroup driver: transient scopes over D-Bus (see ``driver``)."""

from supervisor.runtime.cgroups.systemd.driver import SLICE, SystemdCgroup, SystemdDriver, unit_name

__all__ = ["SLICE", "SystemdCgroup", "SystemdDriver", "unit_name"]
