"""ctrd's core: the definitions, one Unit per container, and the operations the API calls.

On start it re-adopts every container a previous ctrd left running (their records live in
``STATE_DIR/ctrd/``), restarts those that ended meanwhile if their policy says so, and starts the
``autostart`` definitions that have no record yet. Containers made from something other than a
definition (the graders' configurations) are launched with ``launch_spec``; whoever launches them
registers where their spec is found again after a restart (``add_spec_source``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from supervisor.config import dropins
from supervisor.config.daemon import DaemonConfig
from supervisor.config.loader import (
    Definition,
    DefinitionError,
    load_all,
    parse_text,
    render,
)
from supervisor.daemon import runs
from supervisor.daemon.images import Images
from supervisor.daemon.logs import open_relay, remove_files
from supervisor.daemon.machines import open_machines
from supervisor.daemon.services import open_services
from supervisor.daemon.sockets import Sockets, split_stored
from supervisor.daemon.states import State
from supervisor.daemon.unit import ContainerLauncher, Context, Record, Unit
from supervisor.daemon.view import (
    Conflict,
    ContainerView,
    Histogram,
    ImageStats,
    Invalid,
    NotFound,
    Observed,
)
from supervisor.model.errors import Invalid as InvalidValue
from supervisor.model.names import container_name
from supervisor.model.security import security_json
from supervisor.model.spec import ContainerSpec, Resources
from supervisor.runtime.cgroups import open_driver
from supervisor.runtime.container import remove_set_aside
from supervisor.runtime.paths import Dirs
from supervisor.runtime.warm import open_pool

SpecSource = Callable[[str], ContainerSpec | None]
PERSISTED = "50-update.toml"  # the drop-in ``ctrctl update --persist`` writes

log = logging.getLogger(__name__)


class Supervisor:
    """Implements ``supervisor.daemon.view.Backend``."""

    def __init__(self, config: DaemonConfig, stored_fds: Iterable[tuple[str, int]] = ()) -> None:
        """``stored_fds``: what systemd kept for us across a ctrd restart (the containers' log
        pipes, ``supervisor.daemon.logs``, and their sockets, ``supervisor.daemon.sockets``)."""
        self.config = config
        self.units: dict[str, Unit] = {}
        # owner -> the names of the units that join its namespaces: a state change of one
        # container looks at its joiners only, not at every unit (2000 of them at density)
        self._joiners: dict[str, set[str]] = {}
        self.definitions: dict[str, Definition] = {}
        self.errors: dict[str, DefinitionError] = {}
        self.spec_sources: list[SpecSource] = []
        dirs = Dirs(config.state_dir, config.data_dir)
        remove_set_aside(dirs)  # what the teardowns of a killed ctrd left
        cgroups = open_driver(config.cgroup_driver)
        self.images = Images(config.data_dir)
        stored_sockets, stored_fds = split_stored(stored_fds)
        self.warm = open_pool(cgroups, config.state_dir, config.warm_pool)
        self.ctx = Context(dirs=dirs, launcher=ContainerLauncher(dirs, cgroups, self.warm),
                           pool=config.pool, bridge=config.bridge, units=self.units,
                           relay=open_relay(config.data_dir, stored_fds), images=self.images,
                           sockets=Sockets(stored_sockets))
        self.services = open_services(cgroups)  # None without systemd
        self.machines = open_machines(cgroups)  # None without the systemd driver

    # -- life cycle -------------------------------------------------------------------------------

    def load_definitions(self) -> list[str]:
        """(Re-)read every definition; a changed one applies at its next start. Changed names."""
        definitions, errors = load_all(self.config.config_path, data_dir=self.config.data_dir,
                                       pool=self.config.pool)
        for name, error in errors.items():
            log.error("definition %s: %s", name, error)
        changed = [name for name, d in definitions.items()
                   if name not in self.definitions or self.definitions[name].spec != d.spec]
        self.definitions, self.errors = definitions, errors
        for unit in self.units.values():
            definition = definitions.get(unit.record.definition)
            if definition is not None and unit.record.definition in changed:
                self._index(unit, joined=False)
                unit.redefine(definition.spec)
                self._index(unit)
        return sorted(changed)

    async def recover(self) -> None:
        """Adopt what a previous ctrd left, then autostart; never starts a container twice."""
        for path in sorted(self.ctx.records.glob("*.json")):
            try:
                unit = self._unit_from_record(path)
            except (OSError, ValueError, KeyError) as exc:
                log.error("cannot read %s: %s", path, exc)
                continue
            await unit.adopt()
            if unit.state is State.STOPPED and unit.record.want_running:
                self._spawn(unit.start())
        if self.ctx.relay is not None:
            self.ctx.relay.release_unclaimed()
        for name in self.ctx.sockets.names():
            if name not in self.units:
                self.ctx.sockets.release(name)
        for name, definition in self.definitions.items():
            if definition.spec.autostart and name not in self.units:
                self._spawn(self._unit(name).start())

    def _unit_from_record(self, path: Path) -> Unit:
        """The unit a record describes, with the spec of its definition as it is now (a live
        update is the record's own, see ``supervisor.daemon.unit``)."""
        data = json.loads(path.read_text())
        name = container_name(path.stem)
        record = Record(**{f.name: data[f.name] for f in fields(Record) if f.name in data})
        spec = (runs.read(record.run, self.config.pool).spec if record.run is not None
                else self._spec_of(record.definition)) or ContainerSpec(name=name, image="")
        return self._new_unit(replace(spec, name=name), record)

    def _spec_of(self, definition: str) -> ContainerSpec | None:
        if definition in self.definitions:
            return self.definitions[definition].spec
        return next((spec for source in self.spec_sources
                     if (spec := source(definition)) is not None), None)

    def add_spec_source(self, source: SpecSource) -> None:
        """Where the spec of a container launched with ``launch_spec`` is found by the name it
        was launched under: asked when a record names no definition."""
        self.spec_sources.append(source)

    def _new_unit(self, spec: ContainerSpec, record: Record) -> Unit:
        unit = Unit(spec, self.ctx, record, on_change=self._changed)
        self.units[spec.name] = unit
        self._index(unit)
        return unit

    def _index(self, unit: Unit, joined: bool = True) -> None:
        """``unit`` (no longer, unless ``joined``) among the joiners of the containers whose
        namespaces its spec joins."""
        for owner in unit.spec.namespaces.owners:
            names = self._joiners.setdefault(owner, set())
            if joined:
                names.add(unit.name)
            else:
                names.discard(unit.name)

    def _changed(self, unit: Unit) -> None:
        """After each state change: the containers that joined its namespaces follow it, and so
        do its unit in systemd and its registration with machined."""
        self._follow_owner(unit)
        if self.services is not None:
            self.services.follow(unit)
        if self.machines is not None:
            self.machines.follow(unit)

    def _follow_owner(self, owner: Unit) -> None:
        """Containers that joined ``owner``'s namespaces live and die with it (as systemd's
        BindsTo=): stopped when it stops or ends, since its namespaces are gone or about to be
        replaced, and started again once it runs again, if they are meant to run."""
        for name in sorted(self._joiners.get(owner.name, ())):
            unit = self.units[name]
            if owner.state is State.RUNNING:
                if unit.record.want_running and unit.state is State.STOPPED:
                    self._spawn(unit.start())
            elif owner.state is not State.STARTING and unit.state in (State.RUNNING,
                                                                        State.STARTING):
                self._spawn(unit.stop(keep_wanted=True))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        task.add_done_callback(_log_failure)

    # -- lookups ----------------------------------------------------------------------------------

    def _definition(self, name: str) -> Definition:
        if name in self.errors:
            raise Invalid(str(self.errors[name]))
        try:
            return self.definitions[name]
        except KeyError:
            raise NotFound(f"definition {name}: not found") from None

    def _unit(self, name: str) -> Unit:
        """The unit of container ``name``, made from its definition on first use."""
        if name in self.units:
            return self.units[name]
        definition = self._definition(name)
        return self._new_unit(definition.spec, Record(definition=name))

    def _existing(self, name: str) -> Unit:
        try:
            return self.units[name]
        except KeyError:
            if name in self.definitions or name in self.errors:
                return self._unit(name)
            raise NotFound(f"container {name}: not found") from None

    # -- Backend ----------------------------------------------------------------------------------

    def containers(self) -> list[ContainerView]:
        names = sorted(set(self.units) | set(self.definitions))
        return [self._existing(name).view() for name in names]

    def observe(self) -> list[Observed]:
        """Every unit and every definition not yet started, as the metrics read them, sorted by
        name. Called from the metrics server's thread: the dicts are copied first (``list()`` of
        a dict does not release the GIL), each unit read once; no unit is made for a definition."""
        units = list(self.units.values())
        definitions = list(self.definitions.values())
        seen = [unit.observed() for unit in units]
        taken = {o.name for o in seen}
        seen += [Observed.defined(d.name, d.spec.image) for d in definitions
                 if d.name not in taken]
        return sorted(seen, key=lambda o: o.name)

    def image_stats(self) -> ImageStats:
        """The store's images and ctrd's pulls; called from the metrics server's thread."""
        return self.images.counts()

    def start_durations(self) -> Histogram:
        """How long the starts took; called from the metrics server's thread."""
        return self.ctx.starts.histogram()

    def get(self, name: str) -> ContainerView:
        return self._existing(name).view()

    async def start(self, name: str, wait: bool = False,
                    sockets: Sequence[tuple[str, int]] = ()) -> ContainerView:
        try:
            unit = self._existing(name)
            if sockets:
                self._take_sockets(unit, sockets)
        except BaseException:
            for _, fd in sockets:
                os.close(fd)
            raise
        await unit.start(wait=wait)
        return unit.view()

    def _take_sockets(self, unit: Unit, sockets: Sequence[tuple[str, int]]) -> None:
        """Socket activation (supervisor.daemon.sockets): systemd's sockets for the container's
        next starts. One that runs already cannot get them: refused, unless they are the very
        sockets it has (a repeated start), which are closed here as the duplicates they are."""
        fds = [fd for _, fd in sockets]
        if self.ctx.sockets.same(unit.name, fds):
            for fd in fds:
                os.close(fd)
        elif unit.state in (State.STARTING, State.RUNNING, State.STOPPING):
            raise Conflict(f"container {unit.name} is {unit.state.value} without the sockets "
                           "systemd passed: stop it, then start it again")
        else:
            self.ctx.sockets.give(unit.name, sockets)

    async def stop(self, name: str) -> ContainerView:
        unit = self._existing(name)
        await unit.stop()
        self.ctx.sockets.release(name)  # systemd listens on; a connection starts it again
        return unit.view()

    async def restart(self, name: str) -> ContainerView:
        unit = self._existing(name)
        await unit.stop()
        await unit.start()
        return unit.view()

    async def kill(self, name: str, signal: int) -> ContainerView:
        unit = self._existing(name)
        unit.kill(signal)
        return unit.view()

    async def freeze(self, name: str) -> ContainerView:
        unit = self._existing(name)
        await unit.freeze(True)
        return unit.view()

    async def thaw(self, name: str) -> ContainerView:
        unit = self._existing(name)
        await unit.freeze(False)
        return unit.view()

    async def update(self, name: str, resources: Resources,
                     persist: bool = False) -> ContainerView:
        """New limits for the running container; with ``persist`` also for every later start,
        written to a drop-in of its definition (as ``systemctl set-property``)."""
        unit = self._existing(name)
        if persist:
            self._persist(unit, resources)
        if unit.running or not persist:
            try:
                unit.update(resources)
            except (OSError, ValueError) as exc:
                raise Invalid(str(exc)) from exc
        return unit.view()

    def _persist(self, unit: Unit, resources: Resources) -> None:
        if unit.record.instance or unit.name not in self.definitions:
            raise Conflict(f"container {unit.name} has no definition of its own to change: "
                           "update it without --persist")
        path = self.config.config_path[0] / f"{unit.name}.toml.d" / PERSISTED
        try:
            text = path.read_text()
        except FileNotFoundError:
            text = ""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(dropins.with_resources(text, resources))
        os.replace(tmp, path)
        self.load_definitions()

    async def launch(self, definition: str, name: str | None = None) -> ContainerView:
        """A new instance of a stored definition under its own name; removed when deleted."""
        return await self.launch_spec(self._definition(definition).spec, definition, name)

    async def launch_spec(self, spec: ContainerSpec, definition: str,
                          name: str | None = None) -> ContainerView:
        """A new container from ``spec``, recorded as made from ``definition``; named
        ``DEFINITION-N`` unless ``name`` is given; removed when deleted."""
        if name is None:
            taken = set(self.units) | set(self.definitions)
            name = next(f"{definition}-{i}" for i in range(1, len(taken) + 2)
                        if f"{definition}-{i}" not in taken)
        return await self._start_new(replace(spec, name=name),
                                     Record(definition=definition, instance=True))

    async def run(self, options: dict[str, Any], stdio: Sequence[int] = ()) -> ContainerView:
        """``ctrctl run`` handed to ctrd (``supervisor.daemon.runs``): a new container of the
        run's ``options`` on the client's ``stdio``, which are ours from now on."""
        try:
            run = runs.read(options, self.config.pool)
            if run.terminal and not stdio:
                raise runs.OptionError("tty", "a terminal must come with the request (its "
                                       "stdin, stdout and stderr)")
        except BaseException:
            for fd in stdio:
                os.close(fd)
            raise
        attached = runs.Attached.take(stdio, run.terminal) if stdio else None
        return await self._start_new(run.spec, Record(definition="", instance=True,
                                                      run=dict(options)), attached)

    async def _start_new(self, spec: ContainerSpec, record: Record,
                         attached: runs.Attached | None = None) -> ContainerView:
        """A unit for a container of a new name, started (on ``attached``, if given); gone
        again if its start fails."""
        name = spec.name
        try:
            if name in self.units or name in self.definitions:
                raise Conflict(f"container {name!r} exists already")
            try:
                container_name(name)
            except InvalidValue as exc:
                raise Invalid(str(exc)) from exc
        except BaseException:
            if attached is not None:
                attached.close()
            raise
        unit = self._new_unit(spec, record)
        unit.attached = attached
        try:
            await unit.start()
        except Exception:
            if unit.attached is not None:  # it failed before PID 1 took them
                unit.attached.close()
                unit.attached = None
            await self.remove(name)
            raise
        return unit.view()

    async def wait(self, name: str) -> ContainerView:
        """Once container ``name`` does not run (at once if it does not): its view then, with
        the exit code of the run that ended."""
        unit = self._existing(name)
        await unit.ended()
        return unit.view()

    async def remove(self, name: str) -> None:
        unit = self._existing(name)
        await unit.stop()
        self.ctx.sockets.release(name)
        unit.forget()
        if unit.record.instance:
            remove_files(self.ctx.log_path(name))
        self._index(unit, joined=False)
        del self.units[name]

    async def remove_all(self) -> None:
        await asyncio.gather(*(self.remove(name) for name in list(self.units)))

    def log_path(self, name: str) -> Path:
        self._existing(name)
        return self.ctx.log_path(name)

    def definition_names(self) -> list[str]:
        return sorted(set(self.definitions) | set(self.errors))

    def definition_text(self, name: str) -> str:
        return render(self._definition(name))

    async def put_definition(self, name: str, text: str) -> None:
        """Validate, then store as the highest-precedence file of the search path."""
        target = self.config.config_path[0] / f"{name}.toml"
        try:
            container_name(name)
        except InvalidValue as exc:
            raise Invalid(str(exc)) from exc
        # a DefinitionError reaches the client as 400 with every problem in its detail
        parse_text(name, text, source=target, data_dir=self.config.data_dir, pool=self.config.pool)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".toml.tmp")
        tmp.write_text(text)
        os.replace(tmp, target)
        self.load_definitions()

    async def reload(self) -> list[str]:
        return self.load_definitions()

    def exec_info(self, name: str) -> dict[str, Any]:
        unit = self._existing(name)
        container = unit.running_container()
        spec = container.spec  # as it runs: with its image's User, Env and WorkingDir
        return {
            "pid": container.pid,
            "user": spec.effective_user,
            "environment": dict(spec.environment),
            "working_dir": spec.effective_working_dir,
            "privileged": unit.spec.privileged,
            "security": security_json(unit.spec.security),
        }


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.warning("%s", exc)
