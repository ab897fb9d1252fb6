"""The graders' configurations and their instances, on top of ctrd's public operations.

A configuration is stored as ``DATA_DIR/configs/NAME-MAJOR-MINOR.cfg``, the JSON as received;
an instance is a container launched from its spec, named ``KEY-N``, whose definition is the key.
ctrd finds the spec of an instance it adopts after a restart through the source this registers.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

from supervisor.daemon.view import Backend, Conflict, ContainerView, Invalid, NotFound
from supervisor.graders import configuration
from supervisor.model.spec import ContainerSpec


@dataclass(frozen=True)
class Instance:
    """An instance of a configuration, as the graders' ``/list`` shows it."""

    instance: str  # the container's name
    name: str
    major: str
    minor: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


class Graders:
    def __init__(self, ctrd: Backend, data_dir: Path) -> None:
        self.ctrd = ctrd
        self.data_dir = data_dir
        self.configs = configuration.load_all(data_dir)
        self.launched: list[str] = []  # instance names in launch order, since ctrd started
        ctrd.add_spec_source(self._spec)

    def _spec(self, key: str) -> ContainerSpec | None:
        config = self.configs.get(key)
        return None if config is None else config.spec

    def config_names(self) -> list[str]:
        return sorted(self.configs)

    async def put_config(self, text: str) -> None:
        """Validate, then store as received; a stored configuration is never replaced."""
        try:
            config = configuration.parse(text, self.data_dir)
        except ValueError as exc:
            raise Invalid(str(exc)) from exc
        if config.key in self.configs or config.key in self.ctrd.definition_names():
            raise Conflict(f"configuration {config.key} exists already")
        path = configuration.config_path(self.data_dir, config.key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
        self.configs[config.key] = config

    async def launch(self, key: str) -> ContainerView:
        """A new instance; returns once it runs."""
        try:
            spec = self.configs[key].spec
        except KeyError:
            raise NotFound(f"no configuration {key!r}") from None
        try:
            configuration.check_tarballs(spec)
        except ValueError as exc:
            raise Invalid(f"configuration {key}: {exc}") from None
        view = await self.ctrd.launch_spec(spec, key)
        self.launched.append(view.name)
        return view

    def instances(self) -> list[Instance]:
        """In launch order; those a previous ctrd launched first, by name."""
        order = {name: index for index, name in enumerate(self.launched)}
        found = [Instance(view.name, config.name, config.major, config.minor)
                 for view in self.ctrd.containers()
                 if view.name != view.definition
                 and (config := self.configs.get(view.definition)) is not None]
        return sorted(found, key=lambda i: (order.get(i.instance, -1), i.instance))

    async def destroy(self, instance: str) -> None:
        await self.ctrd.remove(instance)
