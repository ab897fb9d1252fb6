"""A failure at any set-up step, or a normal exit, leaves nothing behind on the host."""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

import pytest

from supervisor.model.spec import ContainerSpec, NetworkSpec, Resources
from supervisor.runtime import image, loop, mounts, network, process, security, users
from supervisor.runtime.cgroups import open_driver
from supervisor.runtime.container import Container, ContainerError, Options, remove_set_aside
from supervisor.runtime.locking import exclusive
from supervisor.runtime.paths import Dirs
from tests.e2e.conftest import Env


class Injected(RuntimeError):
    pass


def _fail(*_args: object, **_kwargs: object) -> None:
    raise Injected("injected failure")


@pytest.fixture(scope="module")
def ext4_image(busybox_image: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The busybox image as an ext4 file, so set-up includes a loop device."""
    path = tmp_path_factory.mktemp("ext4") / "busybox.img"
    subprocess.run(["mkfs.ext4", "-q", "-d", str(busybox_image), str(path), "16M"], check=True)
    return path


# (object, attribute) replaced by a failure, in the order start() reaches them. The child-side
# steps fail inside the forked PID 1, the others in the parent.
STEPS = {
    "image": (image, "resolve"),
    "rootfs-plan": (Container, "_plan_rootfs"),
    "loop": (loop, "attach"),
    "spawn": (process, "spawn"),
    "child-mounts": (mounts, "assemble"),
    "child-pivot": (mounts, "pivot"),
    "child-user": (users, "resolve"),
    "network": (network, "attach"),
    "record": (Container, "_write_record"),
    "child-capabilities": (security, "drop_bounding"),
    "exec": (os, "execvpe"),
}


def _container(env: Env, image: Path, name: str) -> Container:
    spec = ContainerSpec(name=name, image=str(image), command=("/bin/true",),
                         network=NetworkSpec(mode="veth"),
                         resources=Resources(memory_max=64 << 20, pids_max=32))
    options = Options(remove=True, pool=env.pool, bridge=env.bridge)
    return Container(spec, Dirs(env.state, env.data), open_driver("auto"), options)


def _assert_nothing_left(env: Env, name: str) -> None:
    assert not (env.state / "containers" / name).exists()
    assert not (env.data / "containers" / name).exists()
    for parent in Dirs(env.state, env.data).containers:  # nor a directory set aside
        assert not parent.exists() or not any(p.name.startswith(".") for p in parent.iterdir())
    leases = env.state / "network" / "leases"
    assert not leases.exists() or not any(leases.iterdir())
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)  # no child left to reap: PID 1 and the intermediate are gone


@pytest.mark.parametrize("step", list(STEPS))
def test_failure_at_each_step_leaves_nothing(env: Env, ext4_image: Path, step: str,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    target, attribute = STEPS[step]
    monkeypatch.setattr(target, attribute, _fail)
    container = _container(env, ext4_image, f"fail-{step}")
    with pytest.raises((Injected, process.SpawnError), match="injected failure"):
        container.start()
    monkeypatch.undo()
    _assert_nothing_left(env, container.name)


def test_normal_exit_leaves_nothing(env: Env, ext4_image: Path) -> None:
    container = _container(env, ext4_image, "normal")
    container.start()
    assert container.wait() == 0
    container.teardown()
    _assert_nothing_left(env, container.name)


def test_vacate_frees_the_name_at_once_and_leaves_the_removal_to_its_caller(
        env: Env, busybox_image: Path) -> None:
    """As ctrd restarts a container: the next run of the name starts before the last one's
    state and writable layer are removed (they were set aside); what a killed ctrd left set
    aside, the next one removes (``remove_set_aside``)."""
    first = _container(env, busybox_image, "again")
    first.start()
    assert first.wait() == 0
    remove = first.vacate()
    aside = [p for parent in Dirs(env.state, env.data).containers for p in parent.iterdir()
             if p.name.startswith(".again.")]
    assert len(aside) == 2  # its state and its writable layer
    second = _container(env, busybox_image, "again")
    second.start()
    assert second.wait() == 0
    remove()
    assert not any(p.exists() for p in aside)
    rest = second.vacate()  # not called: as if ctrd was killed before it could
    remove_set_aside(Dirs(env.state, env.data))
    rest()
    _assert_nothing_left(env, "again")


def test_second_container_of_the_same_name_is_refused(env: Env, busybox_image: Path) -> None:
    first = _container(env, busybox_image, "twin")
    first.start()
    try:
        with pytest.raises(ContainerError, match="already exists"):
            _container(env, busybox_image, "twin").start()
    finally:
        first.wait()
        first.teardown()
    _assert_nothing_left(env, "twin")


def test_a_lock_held_by_another_thread_does_not_pass_into_pid_1(env: Env,
                                                                busybox_image: Path) -> None:
    """ctrd tears one container down in a worker thread (holding the network lock) while it
    starts another: the forked PID 1 must not inherit that lock, or the start deadlocks on it."""
    lock = env.state / "network" / "lock"
    lock.parent.mkdir(parents=True)
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with exclusive(lock):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait()
    container = _container(env, busybox_image, "locked")
    threading.Timer(0.3, release.set).start()  # let go while the start waits for the lock
    starter = threading.Thread(target=container.start, daemon=True)
    starter.start()
    starter.join(timeout=15)
    thread.join()
    assert not starter.is_alive(), "the start deadlocked on a lock its own PID 1 inherited"
    assert container.wait() == 0
    container.teardown()
    _assert_nothing_left(env, "locked")
