"""One container's life in the runtime: set-up in steps, each with its undo, and teardown.

Every step that creates something on the host (state directory, cgroup, writable layer, loop
device, PID 1, veth) registers its undo on an ExitStack before the next step runs, so a failure at
any step, a signal or a normal exit removes exactly what was made, in reverse order.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal as signals
import stat
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from supervisor.model import defaults
from supervisor.model.errors import Invalid
from supervisor.model.idmap import IdMap
from supervisor.model.names import container_name
from supervisor.model.security import MASKED_PATHS, READONLY_PATHS
from supervisor.model.spec import ContainerSpec, DeviceRule, DeviceSpec, MountSpec, Resources
from supervisor.runtime import (
    devices,
    loop,
    mountflags,
    network,
    process,
    security,
    syscalls,
    userns,
)
from supervisor.runtime import image as images
from supervisor.runtime.cgroups import Cgroup, CgroupDriver
from supervisor.runtime.logwriter import LogTarget
from supervisor.runtime.mounts import Layer, LoopSource, PlannedMount, RootfsPlan
from supervisor.runtime.paths import Dirs, secure_join
from supervisor.runtime.spawner import KINDS, Direct, Spawner
from supervisor.systemd import notify

if TYPE_CHECKING:
    from supervisor.images.imageconfig import ImageConfig
    from supervisor.runtime.warm import WarmPool

log = logging.getLogger(__name__)

_NEW_NAMESPACES = (
    syscalls.CLONE_NEWNS | syscalls.CLONE_NEWUTS | syscalls.CLONE_NEWIPC
    | syscalls.CLONE_NEWPID | syscalls.CLONE_NEWCGROUP
)


# Mounted in every root before the user's mounts (see mounts.assemble).
_SPECIAL_MOUNT_POINTS = ("/proc", "/sys", "/dev", "/tmp")


def _is_file_mount(mount: PlannedMount) -> bool:
    return mount.kind == "bind" and os.path.isfile(mount.source)


class ContainerError(RuntimeError):
    """A container could not be created or run; the message says which step and why."""


@dataclass(frozen=True)
class Options:
    """How a caller wants this run of a container; not part of the definition."""

    remove: bool = False  # discard the writable layer afterwards (``--rm``)
    console: str | None = None  # terminal device for /dev/console and PID 1's stdio
    stdio: tuple[int, int, int] | None = None
    log: LogTarget | None = None  # PID 1's stdout and stderr to log files, by its shim
    die_with_parent: bool = False
    pool: str = defaults.POOL  # the veth network: address pool and its bridge
    bridge: str = defaults.BRIDGE
    keep_bridge: bool = False  # leave the bridge when the last container leaves it (ctrd)
    joins: Mapping[str, int] = field(default_factory=dict)  # namespace kind -> pid to join it from
    # Socket activation: (name, listening socket) given to PID 1 as fds 3.., with LISTEN_FDS
    listen_fds: tuple[tuple[str, int], ...] = ()
    # ctr-runtime's: the state directory (instead of STATE_DIR/containers/NAME), the cgroup's
    # name under the driver's parent (instead of NAME), no shim (see LaunchPlan.shim), the
    # OCI lifecycle's steps, and the caller's fds passed on as 3.. (--preserve-fds).
    state_dir: Path | None = None
    cgroup_name: str | None = None
    shim: bool = True
    steps: process.Steps | None = None
    pass_fds: tuple[int, ...] = ()
    no_pivot: bool = False  # see RootfsPlan.no_pivot
    warm: WarmPool | None = None  # ctrd's: starts prepared ahead (runtime/warm.py)
    unplug_lazily: bool = False  # the veth left to the kernel once the container ended (ctrd)


class Container:
    """A container built from ``spec``; ``start()`` returns once its command runs."""

    def __init__(self, spec: ContainerSpec, dirs: Dirs, cgroups: CgroupDriver,
                 options: Options | None = None) -> None:
        self.spec = spec
        self.dirs = dirs
        self.options = options or Options()
        self.name = container_name(spec.name)
        self.pid: int | None = None
        self.shim: int | None = None  # PID 1's parent, which records its exit status
        self.cgroup: Cgroup | None = None
        self.attachment: network.Attachment | None = None
        self.id_map: IdMap | None = None  # with a user namespace: its host ids
        self.started_at: float | None = None
        self._shim_start_time: int | None = None
        self._pidfd: int | None = None  # PID 1, reached whatever became of its cgroup
        self._cgroups = cgroups
        self._cleanup = contextlib.ExitStack()
        self._state_dir = self.options.state_dir or dirs.container_state(self.name)
        self._data_dir = dirs.container_data(self.name)
        self._set_aside: list[Path] = []  # by vacate, for its caller to remove

    # -- set-up ---------------------------------------------------------------------------------

    def start(self) -> None:
        # ``undo`` unwinds a half-made container; ``scratch`` holds what is closed either way.
        with contextlib.ExitStack() as undo, contextlib.ExitStack() as scratch:
            self._claim_state_dir(undo)
            if self.spec.namespaces.user:
                self._choose_ids(undo)
            image = self._image(undo)
            nodes = self._device_nodes()
            # A container that joins another's mount namespace lives in that one's root.
            rootfs = (None if "mnt" in self._joined
                      else self._plan_rootfs(image, scratch, nodes))
            rules = self._device_rules(nodes, rootfs)
            spawner = self._spawner(rules)
            scratch.callback(spawner.close)
            self.cgroup = spawner.cgroup(self.options.cgroup_name or self.name,
                                         self.spec.resources, rules)
            undo.callback(self.cgroup.destroy)
            self.cgroup.write_files(self.spec.cgroup.files)
            child = spawner.spawn(self._launch_plan(rootfs))
            undo.callback(child.abort)
            self.pid, self.shim = child.pid, child.shim
            self._pidfd = os.pidfd_open(child.pid)  # PID 1 waits for "go": it is there
            undo.callback(self._close_pidfd)
            try:
                if self.options.steps:
                    self.options.steps.spawned(child.pid)
                self._attach_network(undo, spawner)
                self.started_at = time.time()
                self._write_record()
            except Exception as exc:
                # PID 1 failing on its own side makes these fail too: report its reason.
                if reason := child.failure():
                    raise process.SpawnError(reason) from exc
                raise
            child.release()
            self.cgroup.joined(child.pid)  # release returns once PID 1 has exec'd in its cgroup
            undo.pop_all()
        self._arm_teardown()

    def _arm_teardown(self) -> None:
        """Teardown runs in reverse: kill everything, then unplug, then remove files (the
        directories set aside first, see ``vacate``)."""
        self._cleanup.callback(self._close_pidfd)
        self._cleanup.callback(self._release_image)
        self._cleanup.callback(self._put_aside, self._state_dir)
        if self.id_map is not None and self._leases_ids:
            self._cleanup.callback(userns.release, self.dirs.state, self.id_map, self.name)
        if self.options.remove:
            self._cleanup.callback(self._put_aside, self._data_dir)
        if self.attachment is not None:
            self._cleanup.callback(self._detach, self.attachment)
        if self.cgroup is not None:
            self._cleanup.callback(self.cgroup.destroy)

    @classmethod
    def adopt(cls, spec: ContainerSpec, dirs: Dirs, cgroups: CgroupDriver,
              options: Options | None = None) -> Container:
        """The container ``spec.name`` that another process started, from its state record.

        Used by a restarted ctrd: the container keeps running; only teardown and the exit status
        (recorded by its shim) pass to the new owner. Raises LookupError if there is no record.
        """
        container = cls(spec, dirs, cgroups, options)
        try:
            record = json.loads((container._state_dir / "state.json").read_text())
        except (OSError, ValueError) as exc:
            raise LookupError(f"container {spec.name}: no usable state record: {exc}") from exc
        container.pid, container.shim = record["pid"], record["shim"]
        container._shim_start_time = record["shim_start_time"]
        container._pidfd = _open_process(record["pid"], record.get("pid_start_time"))
        container.started_at = record["started_at"]
        if record.get("network"):
            container.attachment = network.Attachment.from_dict(record["network"])
        if record.get("userns"):
            container.id_map = IdMap.from_record(record["userns"])
        with contextlib.suppress(FileNotFoundError):  # gone: nothing of it left to kill
            container.cgroup = cgroups.open(spec.name)
        container._arm_teardown()
        container._adopt_image()
        return container

    def alive(self) -> bool:
        """Whether the shim, and so the container, still runs (and is the one we started)."""
        return self.shim is not None and process.same_process(self.shim, self._shim_start_time)

    def exit_status(self) -> tuple[int | None, float | None]:
        """The exit code and time the shim recorded once PID 1 ended; (None, None) before that."""
        try:
            code, when = (self._state_dir / process.EXIT_FILE).read_text().split()
        except (OSError, ValueError):
            return None, None
        return int(code), float(when)

    def ended_fd(self) -> int:
        """A descriptor that becomes readable when the container has ended: a pidfd of its shim,
        which exits right after PID 1 (the caller closes it). ProcessLookupError if it ended
        already."""
        assert self.shim is not None
        return os.pidfd_open(self.shim)

    def collect(self) -> tuple[int | None, float | None]:
        """Once the shim has ended: PID 1's exit code and time, from the shim's record or, if it
        could not write one, from its own exit status (when we are its parent: not after an
        adoption)."""
        assert self.shim is not None
        code, ended_at = self.exit_status()
        with contextlib.suppress(ChildProcessError):
            _, status = os.waitpid(self.shim, 0)
            code = process.exit_code(status) if code is None else code
        return code, ended_at

    def oom_killed(self) -> bool:
        """Whether the kernel's OOM killer killed a process of the container."""
        if self.cgroup is None:
            return False
        try:
            return self.cgroup.oom_kills() > 0
        except OSError:
            return False

    def _claim_state_dir(self, stack: contextlib.ExitStack) -> None:
        self._state_dir.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._state_dir.mkdir()
        except FileExistsError:
            raise ContainerError(f"container {self.name} already exists "
                                 f"(state in {self._state_dir})") from None
        stack.callback(self._remove_state_dir)
        if self.options.remove:
            stack.callback(shutil.rmtree, self._data_dir, ignore_errors=True)

    def _remove_state_dir(self) -> None:
        shutil.rmtree(self._state_dir, ignore_errors=True)

    # -- the image --------------------------------------------------------------------------------

    def _image(self, stack: contextlib.ExitStack) -> images.Image:
        """The image, held in the store while the container exists, and the effective spec
        with its config's defaults (``supervisor.images.effective``)."""
        stack.callback(self._release_image)  # held as it is found (an image of the store)
        image = images.resolve(self.spec.image, self.dirs.data, holder=self.name)
        self._apply_image_config(image.config)
        for mount in self.spec.mounts:
            if Path(mount.source).parent == self._volumes:
                Path(mount.source).mkdir(parents=True, exist_ok=True)
                self._own(Path(mount.source))
        return image

    def _apply_image_config(self, config: ImageConfig | None) -> None:
        if config is None:  # an image without one, a bundle's root
            return
        from supervisor.images import effective  # an OCI image's: not for ``ctr-runtime create``

        try:
            self.spec = effective.spec(self.spec, config, self._volumes)
        except Invalid as exc:
            raise ContainerError(f"image {self.spec.image!r}: {exc}") from None

    def _adopt_image(self) -> None:
        """What the adopted container was started with: its image's config (the image it holds
        in the store), if it has one; a config gone missing leaves the definition as it is."""
        from supervisor.images.store import Store

        try:
            held = Store(self.dirs.data).held(self.name)
        except (LookupError, ValueError) as exc:
            log.warning("%s: cannot read its image's config: %s", self.name, exc)
            return
        try:
            self._apply_image_config(None if held is None else held.config)
        except ContainerError as exc:
            log.warning("%s: %s", self.name, exc)

    def _release_image(self) -> None:
        from supervisor.images.store import Store  # not at import: create of a bundle needs none

        Store(self.dirs.data).release(self.name)

    @property
    def _volumes(self) -> Path:
        """Where the anonymous volumes of its image live: with its writable layer."""
        return self._data_dir / "volumes"

    @property
    def _leases_ids(self) -> bool:
        """Whether ctr leases the user namespace's range: not a bundle's, which its engine
        leased, nor a namespace joined by path, which has its maps."""
        return not self.spec.namespaces.user_ids and self._joined_user is None

    @property
    def _joined_user(self) -> str | None:
        return dict(self.spec.namespaces.paths).get("user")

    def _choose_ids(self, stack: contextlib.ExitStack) -> None:
        """The host ids of the user namespace: preferably those its kept writable layer is owned
        by, so a restart does not have to shift the layer's ownership. One joined by path has
        its own (another container's: what it joins besides is that namespace's too)."""
        if joined := self._joined_user:
            try:
                self.id_map = userns.of_namespace(joined)
            except (OSError, ValueError) as exc:
                raise ContainerError(f"the user namespace to join: {exc}") from None
            given = self.spec.namespaces.user_ids
            if given and given != self.id_map:
                raise ContainerError(f"uidMappings/gidMappings map {given}, but the user "
                                     f"namespace joined ({joined}) maps {self.id_map}")
            return
        if self._joined:
            kinds = ", ".join(sorted(self._joined))
            raise ContainerError(
                f"a new user namespace cannot be combined with joining existing namespaces "
                f"({kinds}): they are owned by the user namespace they were made in, not by this "
                "container's new one, whose root would have no power in them")
        if given := self.spec.namespaces.user_ids:  # an OCI bundle's, which its engine leases
            self.id_map = given
            return
        upper = self._data_dir / "rootfs" / "upper"
        preferred = upper.lstat().st_uid if upper.is_dir() else None
        self.id_map = userns.allocate(self.dirs, self.name, preferred)
        stack.callback(userns.release, self.dirs.state, self.id_map, self.name)

    def _own(self, *paths: Path) -> None:
        """With a user namespace, the container's own ``paths`` belong to its root."""
        if self.id_map is not None:
            userns.take_ownership(paths, self.id_map)

    def _layer(self, lowers: tuple[str, ...], key: str, writable: bool) -> Layer:
        if not writable:
            return Layer(lowers=lowers)
        base = self._data_dir / key
        upper, work = base / "upper", base / "work"
        upper.mkdir(parents=True, exist_ok=True)
        work.mkdir(parents=True, exist_ok=True)
        from supervisor.runtime import preflight  # with its image modules: not for a bundle

        if problem := preflight.upper_layer_problem(self.dirs.data, upper):
            raise ContainerError(problem)
        self._own(upper, work)
        return Layer(lowers=lowers, upper=str(upper), work=str(work))

    def _device_nodes(self) -> tuple[devices.Node, ...]:
        try:
            given = tuple(devices.host_node(device) for device in self.spec.devices)
        except ValueError as exc:
            raise ContainerError(str(exc)) from None
        return (*given, *(devices.Node("", n.path, n.type, n.major, n.minor, n.mode, "",
                                       n.uid, n.gid) for n in self.spec.device_nodes))

    def _device_rules(self, nodes: tuple[devices.Node, ...],
                      rootfs: RootfsPlan | None) -> tuple[DeviceRule, ...] | None:
        """What the cgroup lets the container open: everything if privileged; else the default
        list, its devices, and read access to the loop device of its image (PID 1 mounts it from
        inside the cgroup)."""
        if self.spec.privileged:
            return None
        loop_device = rootfs.loop.device if rootfs is not None and rootfs.loop else None
        extra = () if loop_device is None else (
            devices.host_node(DeviceSpec(loop_device, loop_device, "r")).rule,)
        given = self.spec.cgroup.device_rules
        if given == (DeviceRule("a"),):
            return None
        if given is not None:  # an OCI bundle's: the engine lists its devices' rules itself
            nodes = tuple(node for node in nodes if node.permissions)
            extra = (*extra, *given)
        return devices.allow_list(nodes, *extra)

    def _plan_rootfs(self, image: images.Image, scratch: contextlib.ExitStack,
                     nodes: tuple[devices.Node, ...]) -> RootfsPlan:
        root = self._state_dir / "rootfs"
        root.mkdir()
        loop_source = None
        lowers = image.layers
        base = None if image.stored is None else str(image.path)
        if image.fstype is not None:
            # Auto-clearing: once PID 1 has mounted it, our descriptor may go; the device frees
            # itself when the container's mount namespace is gone.
            device = loop.attach(image.path, read_only=True)
            scratch.callback(device.close)
            mountpoint = self._state_dir / "lower"
            mountpoint.mkdir()
            loop_source = LoopSource(str(device.path), image.fstype, str(mountpoint))
            lowers = (str(mountpoint),)
        mounts = self._plan_mounts()
        if self.spec.root.in_place:
            layer = Layer(lowers=lowers, in_place=True)
        else:
            layer = replace(self._layer(lowers, "rootfs", writable=not self.spec.read_only),
                            base=base)
        if layer.upper is None and not layer.in_place:
            points = [(path, False) for path in _SPECIAL_MOUNT_POINTS]
            points += [(m.target, _is_file_mount(m)) for m in mounts]
            paths = tuple(layer.lower_path(i) for i in range(len(lowers)))
            layer = replace(layer, skeleton=self._skeleton("rootfs", "/", paths, points))
        sources = None
        if self.id_map is not None:
            sources = self._state_dir / "sources"
            sources.mkdir()
            if self.options.console:  # ours, made for this container: its root's terminal
                os.chown(self.options.console, self.id_map.root[0], -1)
        return RootfsPlan(
            root=str(root),
            layer=layer,
            loop=loop_source,
            mounts=tuple(mounts),
            console=self.options.console,
            privileged=self.spec.privileged,
            sources=None if sources is None else str(sources),
            bind_sys=sources is not None and not self._new_network_namespace,
            devices=nodes,
            **self._root_settings(),
        )

    def _root_settings(self) -> dict[str, Any]:
        """What the spec's ``root`` and ``security`` make of the plan: ctr's own mounts and
        paths or exactly a bundle's, and the root's propagation."""
        root, security = self.spec.root, self.spec.security
        defaults = root.system_mounts
        propagation = mountflags.propagation(root.propagation)
        shared = propagation & mountflags.MS_SHARED
        return {
            "system_mounts": defaults,
            "masked_paths": (*(MASKED_PATHS if defaults else ()), *security.masked_paths),
            "read_only_paths": (*(READONLY_PATHS if defaults else ()),
                                *security.read_only_paths),
            "propagation": syscalls.MS_REC | syscalls.MS_PRIVATE if not propagation or shared
            else propagation,
            "final_propagation": propagation if shared else 0,
            "read_only_root": root.in_place and self.spec.read_only,
            "no_pivot": self.options.no_pivot,
        }

    def _plan_mounts(self) -> list[PlannedMount]:
        if not self.spec.root.system_mounts:
            return [self._bundle_mount(mount) for mount in self.spec.mounts]
        import tarfile  # a definition's sources may be tarballs; a bundle's are binds

        from supervisor.runtime import tarball

        planned: list[PlannedMount] = []
        for index, mount in enumerate(self.spec.mounts):
            if mount.type == "tmpfs":
                planned.append(PlannedMount(mount.target, "tmpfs", size=mount.size))
                continue
            source = Path(mount.source)
            if not source.exists():
                raise ContainerError(f"mount source {source} does not exist")
            if source.is_file() and tarfile.is_tarfile(source):
                # read-only: shared between containers (the cache itself); read-write: a
                # copy-on-write layer of this container's own
                unpacked = str(tarball.unpack_cached(source, self.dirs.cache))
                layer = self._layer((unpacked,), f"mounts/{index}", writable=not mount.read_only)
                planned.append(PlannedMount(mount.target, "overlay", layer=layer))
            elif source.is_dir() and mount.read_only:  # a layer: it can carry mount points
                planned.append(PlannedMount(mount.target, "overlay",
                                            layer=Layer(lowers=(str(source),))))
            else:
                planned.append(PlannedMount(mount.target, "bind", str(source),
                                            read_only=mount.read_only))
        return [self._with_mount_points(index, mount, planned[index + 1:])
                for index, mount in enumerate(planned)]

    @staticmethod
    def _bundle_mount(mount: MountSpec) -> PlannedMount:
        """An OCI bundle's mount, as it asks: binds of its sources (no layers made of them),
        file systems with their own options."""
        if mount.type == "bind" and not os.path.exists(mount.source):
            raise ContainerError(f"mount source {mount.source} does not exist")
        return PlannedMount(
            mount.target, "bind" if mount.type == "bind" else "fs", mount.source,
            read_only=mount.read_only, fstype="" if mount.type == "bind" else mount.type,
            data=",".join(mount.data), flags=mountflags.flags(mount.flags),
            propagation=mountflags.propagation(mount.propagation), recursive=mount.recursive,
            idmap=mount.idmap, id_map=mount.id_map)

    def _with_mount_points(self, index: int, mount: PlannedMount,
                           later: list[PlannedMount]) -> PlannedMount:
        """A read-only layer gets the mount points of the mounts nested in it that it lacks."""
        layer = mount.layer
        if mount.kind != "overlay" or layer is None or layer.upper is not None:
            return mount
        points = [(m.target, _is_file_mount(m)) for m in later]
        skeleton = self._skeleton(f"mounts/{index}", mount.target, layer.lowers, points)
        return replace(mount, layer=replace(layer, skeleton=skeleton))

    def _skeleton(self, key: str, target: str, lowers: tuple[str, ...],
                  points: list[tuple[str, bool]]) -> str | None:
        """A directory with the mount points under ``target`` that ``lowers`` lack, or None."""
        base = target.rstrip("/") + "/"
        missing = [(path[len(base):], is_file) for path, is_file in points
                   if path.startswith(base) and path.rstrip("/") != target.rstrip("/")]
        missing = [(rel, is_file) for rel, is_file in missing if not _in_layers(lowers, rel)]
        if not missing:
            return None
        skeleton = self._data_dir / "skeletons" / key
        shutil.rmtree(skeleton, ignore_errors=True)
        for rel, is_file in missing:
            path = skeleton / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if is_file:
                path.touch()
            else:
                path.mkdir(exist_ok=True)
        self._own(skeleton)
        return str(skeleton)

    @property
    def _new_network_namespace(self) -> bool:
        return self.spec.network.mode != "host" and "net" not in self._joined

    @property
    def _joined(self) -> set[str]:
        """The kinds of namespace joined: from another container, or by path (a bundle's)."""
        return {*self.options.joins, *(kind for kind, _ in self.spec.namespaces.paths)}

    def _launch_plan(self, rootfs: RootfsPlan | None) -> process.LaunchPlan:
        namespaces = _NEW_NAMESPACES
        if self._new_network_namespace:
            namespaces |= syscalls.CLONE_NEWNET
        joins = []
        for kind, pid in self.options.joins.items():
            flag = syscalls.NAMESPACE_FLAGS[kind]
            namespaces &= ~flag
            joins.append((f"/proc/{pid}/ns/{kind}", flag))
        for kind, path in self.spec.namespaces.paths:
            namespaces &= ~syscalls.NAMESPACE_FLAGS[kind]
            joins.append((path, syscalls.NAMESPACE_FLAGS[kind]))
        for kind in self.spec.namespaces.host:  # a bundle's: left the host's
            namespaces &= ~syscalls.NAMESPACE_FLAGS[kind]
        domain = self.spec.domainname
        assert self.cgroup is not None
        procs = self.cgroup.procs_paths()
        born_in = _cgroup2_directory(procs)
        return process.LaunchPlan(
            argv=self.spec.argv,
            namespaces=namespaces,
            rootfs=rootfs,
            confinement=self.confinement(),
            cgroup_procs=tuple(str(path) for path in procs if path.parent != born_in),
            fork_into=None if born_in is None else str(born_in),
            environment={**dict(self.spec.environment), **notify.listen_environment(
                [name for name, _ in self.options.listen_fds])},
            pass_fds=(*self.options.pass_fds, *(fd for _, fd in self.options.listen_fds)),
            user=self.spec.effective_user,
            working_dir=self.spec.effective_working_dir,
            joins=tuple(joins),
            hostname=None if "uts" in self._joined else self.spec.effective_hostname,
            stdio=self.options.stdio,
            log=self.options.log,
            tty=self.options.console is not None,
            die_with_parent=self.options.die_with_parent,
            exit_dir=str(self._state_dir),
            userns=self.id_map,
            init=process.helper_path("ctr-init") if self.spec.init else None,
            shim=self.options.shim,
            settings=self.spec.process,
            sysctl=(*self.spec.sysctl, *((("kernel.domainname", domain),) if domain else ())),
            steps=self.options.steps,
        )

    def confinement(self) -> security.Confinement:
        """What the container's processes run under, PID 1 and every one exec'd into it."""
        return security.confinement(self.spec.security, self.spec.privileged,
                                    self.dirs.cache / "seccomp")

    def _spawner(self, rules: tuple[DeviceRule, ...] | None) -> Spawner:
        """A start ctrd's warm pool prepared, if this container is of a kind it prepares (see
        runtime/warm.py) and one is ready; else the direct way (with the pool's driver, which
        is ours)."""
        simple = not (self.id_map or self._joined or self.spec.namespaces.host
                      or self.options.steps or not self.options.shim
                      or self.options.cgroup_name or self.options.die_with_parent)
        kind = self.spec.network.mode
        if self.options.warm is not None and simple and kind in KINDS:
            return self.options.warm.take(kind, rules)
        return Direct(self._cgroups)

    def _attach_network(self, stack: contextlib.ExitStack, spawner: Spawner) -> None:
        """A veth for network "veth"; "none" has its loopback up already (PID 1 did it, or the
        warm pool)."""
        assert self.pid is not None
        if self.spec.network.mode == "veth" and "net" not in self._joined:
            self.attachment = spawner.attach(self.name, self.pid, self.spec.network,
                                             self.dirs.state, self.options.pool,
                                             self.options.bridge)
            stack.callback(self._detach, self.attachment)
        self._apply_rates(self.spec.resources)

    def update(self, resources: Resources) -> None:
        """New limits for the running container (``ctrctl update``): the cgroup's and the
        veth's; the others stay as they are."""
        assert self.cgroup is not None
        self.cgroup.apply(resources)
        self._apply_rates(resources)

    def _apply_rates(self, resources: Resources) -> None:
        if resources.egress_rate is None and resources.ingress_rate is None:
            return
        if self.attachment is None:
            raise ValueError(f"container {self.name} has no veth to limit: egress_rate and "
                             'ingress_rate need network.mode = "veth"')
        network.set_rates(self.attachment, resources.egress_rate, resources.ingress_rate)

    def _detach(self, attachment: network.Attachment) -> None:
        network.detach(attachment, self.dirs.state, self.options.keep_bridge,
                       self.options.unplug_lazily)

    def _write_record(self) -> None:
        assert self.shim is not None and self.pid is not None
        self._shim_start_time = process.start_time(self.shim)
        record: dict[str, Any] = {
            "name": self.name,
            "pid": self.pid,
            "pid_start_time": process.start_time(self.pid),
            "shim": self.shim,
            "shim_start_time": self._shim_start_time,
            "started_at": self.started_at,
            "image": self.spec.image,
            "cgroup": self._cgroups.name,
            "network": self.attachment.to_dict() if self.attachment else None,
            "userns": self.id_map.to_record() if self.id_map else None,
        }
        tmp = self._state_dir / "state.json.tmp"
        tmp.write_text(json.dumps(record))
        tmp.rename(self._state_dir / "state.json")

    # -- running ----------------------------------------------------------------------------------

    @property
    def address(self) -> str | None:
        return str(self.attachment.address.ip) if self.attachment else None

    def wait(self) -> int:
        """Block until PID 1 exits; its exit code (128 + signal when killed), as the shim reports
        it by exiting with the same code."""
        assert self.shim is not None
        _, status = os.waitpid(self.shim, 0)
        return process.exit_code(status)

    def signal(self, sig: int) -> None:
        """``sig`` to PID 1 through its pidfd: it reaches the process we started (never one that
        reused its pid), whatever happened to the cgroup. SIGKILL to PID 1 of a new pid
        namespace ends every process in it."""
        if self._pidfd is not None:
            with contextlib.suppress(ProcessLookupError):
                signals.pidfd_send_signal(self._pidfd, sig)

    def _close_pidfd(self) -> None:
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None

    def teardown(self) -> None:
        """Kill whatever still runs in the container and remove everything it made."""
        self.vacate()()

    def vacate(self) -> Callable[[], None]:
        """Kill whatever still runs in the container and free all a next run of its name needs
        (its cgroup, network, lease, image hold; its state and data directories renamed aside);
        return the removal of what was set aside, which need not delay that run (a restart:
        1-4 ms of ``rmtree``, measured). What a killed ctrd left set aside,
        ``remove_set_aside`` removes."""
        self._cleanup.close()
        aside, self._set_aside = self._set_aside, []
        return lambda: _remove_all(aside)

    def vacated_at_once(self) -> bool:
        """Whether ``vacate`` has nothing to wait for (see ``Cgroup.destroyed_at_once``): its
        other steps are a few renames and netlink requests, as a start makes."""
        try:
            return self.cgroup is None or self.cgroup.destroyed_at_once()
        except OSError:  # cannot tell: the way that may wait
            return False

    def _put_aside(self, directory: Path) -> None:
        """Rename ``directory`` to a name no container has (a dot first), in the same parent;
        if that fails, remove it here."""
        aside = directory.parent / f"{_ASIDE}{directory.name}.{os.getpid()}.{self.pid}"
        try:
            directory.rename(aside)
        except FileNotFoundError:
            return
        except OSError:
            shutil.rmtree(directory, ignore_errors=True)
            return
        self._set_aside.append(aside)


_ASIDE = "."  # container names start with a letter or digit (supervisor.model.names)


def _remove_all(directories: list[Path]) -> None:
    for directory in directories:
        shutil.rmtree(directory, ignore_errors=True)


def remove_set_aside(dirs: Dirs) -> None:
    """The directories that ended containers' teardowns set aside and a killed ctrd did not
    get to remove."""
    for parent in dirs.containers:
        with contextlib.suppress(FileNotFoundError):
            _remove_all([path for path in parent.iterdir() if path.name.startswith(_ASIDE)])



def _cgroup2_directory(procs: list[Path]) -> Path | None:
    """Which of a cgroup's directories (given by their ``cgroup.procs``) is a cgroup2 one, if
    any: PID 1 is born in it rather than joining it (``LaunchPlan.fork_into``)."""
    return next((path.parent for path in procs
                 if syscalls.statfs_type(str(path.parent)) == syscalls.CGROUP2_SUPER_MAGIC), None)


def _in_layers(lowers: tuple[str, ...], path: str) -> bool:
    """Whether the overlay of ``lowers`` (top first) shows ``path``: the topmost layer that
    has it decides, and a whiteout there (a 0:0 character device) hides it."""
    for lower in lowers:
        try:
            st = os.lstat(secure_join(lower, path))
        except FileNotFoundError:
            continue
        return not (stat.S_ISCHR(st.st_mode) and st.st_rdev == 0)
    return False


def _open_process(pid: int, started: int | None) -> int | None:
    """A pidfd of ``pid`` if it is still the process that started at ``started``."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return None
    if not process.same_process(pid, started):  # checked after the open: the pidfd is that one
        os.close(pidfd)
        return None
    return pidfd
