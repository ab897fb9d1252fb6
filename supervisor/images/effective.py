"""The effective spec of a container run from an OCI image: its definition with the defaults of
the image's config, by docker's rules. The one place they are applied: the runtime calls it at
every start (``ctrctl run`` and ctrd alike) and after adopting a container.

- Entrypoint and Cmd: a definition's ``command`` replaces Cmd, its ``entrypoint`` replaces
  Entrypoint, and an ``entrypoint`` given without ``command`` drops the image's Cmd (it was
  written for the image's own entrypoint); PID 1 runs the entrypoint followed by the command.
- Env: the image's variables, those the definition sets replaced.
- WorkingDir, User, StopSignal: the image's unless the definition sets its own.
- Healthcheck: the image's unless the definition has a ``[health]`` of its own (docker's
  ``NONE`` on either side: no check).
- Labels and ExposedPorts: carried for ``ctrctl status``.
- Volumes: an anonymous directory per container and path, under the container's data directory
  (kept with its writable layer, removed with it), unless the definition mounts something there.

Every value of the image is read by the model's parser of that value, so a bad one reads as a
definition's would, prefixed with the image config's key.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from supervisor.images.imageconfig import ImageConfig
from supervisor.model import command as commands
from supervisor.model import health
from supervisor.model.errors import Invalid
from supervisor.model.names import user
from supervisor.model.signals import signal
from supervisor.model.spec import ContainerSpec, HealthSpec, MountSpec
from supervisor.model.values import absolute_path

T = TypeVar("T")


def spec(definition: ContainerSpec, config: ImageConfig | None,
         volumes: Path) -> ContainerSpec:
    """``definition`` with ``config``'s defaults (None: an image without a config, which has
    none); ``volumes`` is where the anonymous volumes of this container live."""
    if config is None:
        return definition
    entrypoint, command = _process(definition, config)
    stop = definition.stop
    if stop.signal is None and config.stop_signal:
        stop = replace(stop, signal=_read(signal, config.stop_signal, "StopSignal"))
    environment = dict(config.env)
    environment.update(definition.environment)
    return replace(
        definition,
        entrypoint=entrypoint,
        command=command,
        environment=tuple(environment.items()),
        user=definition.user or _optional(user, config.user, "User"),
        working_dir=definition.working_dir or _optional(absolute_path, config.working_dir,
                                                        "WorkingDir"),
        stop=stop,
        health=definition.health if definition.health is not None else _health(config),
        labels=tuple(config.labels.items()),
        exposed_ports=config.exposed_ports,
        mounts=(*volume_mounts(definition, config, volumes), *definition.mounts),
    )


def _process(definition: ContainerSpec, config: ImageConfig
             ) -> tuple[tuple[str, ...], tuple[str, ...] | None]:
    if definition.entrypoint is not None:
        entrypoint, command = definition.entrypoint, definition.command
    else:
        entrypoint = _optional(commands.command, list(config.entrypoint or ()),
                               "Entrypoint") or ()
        command = definition.command
        if command is None:
            command = _optional(commands.command, list(config.cmd or ()), "Cmd")
    if not entrypoint and not command:
        raise Invalid("the image has neither Entrypoint nor Cmd: give the container a command")
    return entrypoint, command


def _health(config: ImageConfig) -> HealthSpec | None:
    check = config.healthcheck
    if check is None:
        return None
    return _read(lambda test: health.from_image(test, check.interval, check.timeout,
                                                check.start_period, check.retries),
                 list(check.test), "Healthcheck")


def volume_mounts(definition: ContainerSpec, config: ImageConfig,
                  volumes: Path) -> tuple[MountSpec, ...]:
    """A writable directory per Volumes path of the image that the definition mounts nothing
    at; named after the path (``/var/lib/db`` -> ``var%2Flib%2Fdb``), so the same volume is
    found again at the next start."""
    taken = {mount.target for mount in definition.mounts}
    mounts = []
    for path in config.volumes:
        target = _read(absolute_path, path, "Volumes")
        if target not in taken and target != "/":
            name = urllib.parse.quote(target.strip("/"), safe="")
            mounts.append(MountSpec(target=target, source=str(volumes / name)))
    return tuple(mounts)


def _optional(parse: Callable[[Any], T], value: Any, key: str) -> T | None:
    return _read(parse, value, key) if value else None


def _read(parse: Callable[[Any], T], value: Any, key: str) -> T:
    try:
        return parse(value)
    except Invalid as e:
        at = "".join(f"[{part}]" for part in e.at)
        raise Invalid(f"the image's config.{key}{at}: {e}") from None
