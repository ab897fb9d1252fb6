"""The process settings of ``ProcessSettings`` applied by the process about to exec the command:
its resource limits, OOM score and umask, and its supplementary groups.

Run as root still, before the capabilities go: raising a hard limit above the current one needs
CAP_SYS_RESOURCE (which is why podman's default of 1048576 open files fails where the host lacks
it, with the limit named), and so does lowering the OOM score.
"""

from __future__ import annotations

import dataclasses
import os
import resource

from supervisor.model.rlimits import UNLIMITED
from supervisor.model.spec import ProcessSettings
from supervisor.runtime.users import Identity


def _value(amount: int) -> int:
    return resource.RLIM_INFINITY if amount == UNLIMITED else amount


def apply(settings: ProcessSettings) -> None:
    for limit in settings.rlimits:
        try:
            resource.setrlimit(getattr(resource, limit.type),
                               (_value(limit.soft), _value(limit.hard)))
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise OSError(getattr(exc, "errno", None),
                          f"setting {limit.type} to {limit.soft}:{limit.hard}: {reason}") \
                from None
    if settings.oom_score_adj is not None:
        try:
            with open("/proc/self/oom_score_adj", "w") as f:
                f.write(str(settings.oom_score_adj))
        except OSError as exc:
            raise OSError(exc.errno, f"oom_score_adj {settings.oom_score_adj}: "
                          f"{exc.strerror}") from None
    if settings.umask is not None:
        os.umask(settings.umask)


def identity(found: Identity, settings: ProcessSettings) -> Identity:
    """The user as resolved in the image, with exactly the settings' supplementary groups if
    they give them (an OCI bundle's ``additionalGids``)."""
    if settings.groups is None:
        return found
    return dataclasses.replace(found, groups=(found.gid, *settings.groups))
