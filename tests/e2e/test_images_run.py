"""OCI images run as containers (``ctrctl run``), pulled from Debian's docker-registry on
loopback: what the container sees of the layers (files of several layers, whiteouts, opaque
directories, a 50-layer image), of the image's config (Env, WorkingDir, User, Entrypoint and Cmd
in every combination, Volumes), with a user namespace and read-only; the pull policies; a
``podman save`` archive loaded and run; and the store keeping what a running container uses.

Every image here has the busybox tree as its bottom layer, so it has a shell to look with.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Env
from tests.images_fixtures import (
    Entry,
    Registry,
    directory,
    opaque,
    podman_save,
    publish,
    registry,
    tree_tar,
    whiteout,
)

NO_NET = ("--network", "none")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    work = tmp_path_factory.mktemp("registry")
    try:
        with registry(work) as running:
            yield running
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def base(busybox_image: Path) -> bytes:
    return tree_tar(busybox_image)


@dataclass
class Images(Env):
    """An ``Env`` whose ctrctl pulls from the test's registry (registries.conf of its own)."""

    registries_conf: Path = Path()
    registry: Registry | None = None
    busybox_layer: bytes = b""

    @property
    def environ(self) -> dict[str, str]:
        return {**super().environ, "CONTAINERS_REGISTRIES_CONF": str(self.registries_conf)}

    def publish(self, name: str, layers: list[list[Entry]] | None = None,
                config: dict[str, Any] | None = None) -> str:
        """Push an image of busybox and ``layers`` as ``HOST/img/NAME:1``; its reference."""
        assert self.registry is not None
        return publish(self.registry, self.data.parent, name, self.busybox_layer, layers,
                       config)

    def out(self, ref: str, *command: str, flags: tuple[str, ...] = ()) -> str:
        """What ``ctrctl run --rm --image REF [flags] [-- command]`` prints; it must succeed."""
        args = ["run", "--rm", *NO_NET, "-q", "--image", ref, *flags]
        result = self.ctrctl(*args, *(("--", *command) if command else ()), timeout=120)
        assert result.returncode == 0, f"{args}: {result.stderr}"
        return result.stdout


@pytest.fixture
def images(tmp_path: Path, busybox_image: Path, server: Registry,
           base: bytes) -> Iterator[Images]:
    state, data = tmp_path / "state", tmp_path / "data"
    (data / "images").mkdir(parents=True)
    (data / "images" / "busybox").symlink_to(busybox_image)
    conf = tmp_path / "registries.conf"
    conf.write_text(f'unqualified-search-registries = ["{server.host}"]\n'
                    f'[[registry]]\nlocation = "{server.host}"\ninsecure = true\n')
    yield Images(state=state, data=data, registries_conf=conf, registry=server,
                 busybox_layer=base)
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_files_of_several_layers_and_what_later_layers_deleted(images: Images) -> None:
    ref = images.publish("layered", [
        [directory("srv/www"), Entry("srv/www/old.html", data=b"old"), Entry("etc/remove-me"),
         Entry("etc/motd", data=b"base\n"), Entry("usr/bin/tool", data=b"#!/bin/sh\n",
                                                   mode=0o4755)],
        [whiteout("etc/remove-me"), opaque("srv/www"), Entry("srv/www/new.html", data=b"new")],
        [Entry("etc/motd", data=b"top\n")],
    ])
    out = images.out(ref, "/bin/sh", "-c", "cat /etc/motd; ls /srv/www; ls /etc/remove-me; "
                     "stat -c %a /usr/bin/tool; ls /bin/busybox")
    assert out.split() == ["top", "new.html", "4755", "/bin/busybox"]


def test_fifty_layers(images: Images) -> None:
    layers = [[Entry(f"layers/{n:02}", data=f"{n}\n".encode())] for n in range(50)]
    layers.append([whiteout("layers/07")])
    ref = images.publish("fifty", layers)
    out = images.out(ref, "/bin/sh", "-c", "ls /layers | wc -l; cat /layers/00 /layers/49")
    assert out.split() == ["49", "0", "49"]  # 52 layers: busybox, fifty files, a whiteout
    # read-only: an overlay of the lower layers alone, with the mount points they lack
    out = images.out(ref, "/bin/sh", "-c", "ls /layers | wc -l", flags=("--read-only",))
    assert out.split() == ["49"]


CONFIG = {"Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "GREETING=from-image", "KEEP=kept"],
          "WorkingDir": "/srv/app", "User": "ctr", "Cmd": ["/bin/sh"]}


def test_env_working_dir_and_user_of_the_image(images: Images) -> None:
    ref = images.publish("config", [[directory("srv/app", uid=1000, gid=1000)]], CONFIG)
    probe = ("/bin/sh", "-c", "id -u; id -g; pwd; echo $GREETING $KEEP")
    assert images.out(ref, *probe).split() == ["1000", "1000", "/srv/app", "from-image",
                                               "kept"]
    # a definition's values win, variable by variable
    flags = ("--user", "0:0", "--workdir", "/tmp", "-e", "GREETING=from-run")
    assert images.out(ref, *probe, flags=flags).split() == ["0", "0", "/tmp", "from-run",
                                                            "kept"]


@pytest.mark.parametrize(("flags", "command", "printed"), [
    ((), (), "entry cmd"),
    ((), ("/bin/echo", "x"), "entry /bin/echo x"),  # the command replaces Cmd only
    (("--entrypoint", "/bin/echo"), (), ""),  # Cmd dropped with a new entrypoint
    (("--entrypoint", '["/bin/echo", "E"]'), ("arg",), "E arg"),
    (("--entrypoint", ""), ("/bin/echo", "no", "entrypoint"), "no entrypoint"),
], ids=["image", "command", "entrypoint", "both", "none"])
def test_entrypoint_and_cmd(images: Images, flags: tuple[str, ...], command: tuple[str, ...],
                            printed: str) -> None:
    ref = images.publish("entry", config={"Entrypoint": ["/bin/echo", "entry"], "Cmd": ["cmd"]})
    assert images.out(ref, *command, flags=flags) == f"{printed}\n"


def test_an_image_with_nothing_to_run_needs_a_command(images: Images) -> None:
    ref = images.publish("bare")
    result = images.ctrctl("run", "--rm", *NO_NET, "-q", "--image", ref)
    assert result.returncode == 125
    assert "neither Entrypoint nor Cmd: give the container a command" in result.stderr
    assert images.out(ref, "/bin/echo", "given") == "given\n"


def test_anonymous_volumes_are_kept_with_the_writable_layer(images: Images) -> None:
    ref = images.publish("volume", [[directory("var/lib/db")]],
                         {"Volumes": {"/var/lib/db": {}}, "Cmd": ["/bin/sh"]})
    run = ("run", *NO_NET, "-q", "--name", "img-volume", "--image", ref, "--", "/bin/sh", "-c")
    first = images.ctrctl(*run, "echo kept > /var/lib/db/f; grep /var/lib/db /proc/mounts")
    assert first.returncode == 0, first.stderr
    assert first.stdout.split()[1] == "/var/lib/db"  # a mount of its own, not the overlay
    volume = images.data / "containers" / "img-volume" / "volumes" / "var%2Flib%2Fdb"
    assert (volume / "f").read_text() == "kept\n"
    again = images.ctrctl("run", "--rm", *run[1:], "cat /var/lib/db/f")
    assert again.stdout == "kept\n", again.stderr
    assert not (images.data / "containers" / "img-volume").exists()  # --rm took it


def test_a_user_namespace_container_from_an_image(images: Images) -> None:
    ref = images.publish("userns", [
        [Entry("etc/gone"), directory("opaque"), Entry("opaque/old"),
         Entry("home/ctr/owned", data=b"mine\n", uid=1000, gid=1000)],
        [whiteout("etc/gone"), opaque("opaque"), Entry("opaque/new")],
    ])
    out = images.out(ref, "/bin/sh", "-c", "cat /proc/self/uid_map | wc -l; ls /opaque; "
                     "ls /etc/gone; stat -c '%u:%g' /home/ctr/owned /bin/busybox; "
                     "echo w > /written && cat /written", flags=("--userns",))
    # its root is not the host's, yet sees the layers' owners as the image has them
    assert out.split() == ["1", "new", "1000:1000", "0:0", "w"]
    uid_map = images.out(ref, "/bin/cat", "/proc/self/uid_map", flags=("--userns",)).split()
    assert uid_map[0] == "0" and uid_map[1] != "0"


def test_read_only_from_an_image(images: Images) -> None:
    ref = images.publish("readonly", [[Entry("etc/motd", data=b"ro\n")]])
    result = images.ctrctl("run", "--rm", *NO_NET, "-q", "--read-only", "--image", ref, "--",
                           "/bin/sh", "-c", "cat /etc/motd; touch /etc/motd")
    assert result.stdout == "ro\n" and "Read-only file system" in result.stderr


def test_pull_policies(images: Images, server: Registry) -> None:
    ref = images.publish("policy")
    never = images.ctrctl("run", "--rm", *NO_NET, "--pull", "never", "--image", ref, "--",
                          "/bin/true")
    assert never.returncode == 125
    assert 'is not in the image store and its pull policy is "never"' in never.stderr
    fetched = server.manifest_fetches("img/policy")
    assert images.out(ref, "/bin/echo", "pulled") == "pulled\n"  # missing: pulled
    assert server.manifest_fetches("img/policy") == fetched + 1
    images.out(ref, "/bin/true")  # missing, and in the store now: not fetched again
    images.out(ref, "/bin/true", flags=("--pull", "never"))
    assert server.manifest_fetches("img/policy") == fetched + 1
    images.out(ref, "/bin/true", flags=("--pull", "always"))
    assert server.manifest_fetches("img/policy") == fetched + 2


def test_a_short_name_is_pulled_through_registries_conf_and_a_local_image_wins(
        images: Images) -> None:
    images.publish("short", [[Entry("which", data=b"registry\n")]])
    assert images.out("img/short:1", "/bin/cat", "/which") == "registry\n"
    # a directory image named like the short name is local: it wins, as in podman
    local = images.data / "images" / "shortcut"
    shutil.copytree(images.data / "images" / "busybox", local, symlinks=True)
    (local / "which").write_text("local\n")
    images.publish("shortcut", [[Entry("which", data=b"registry\n")]])
    assert images.out("shortcut", "/bin/cat", "/which") == "local\n"


def test_a_podman_save_archive_of_a_podman_import_image(images: Images, busybox_image: Path,
                                                        tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs.tar"
    rootfs.write_bytes(tree_tar(busybox_image))
    archive = tmp_path / "saved.tar"
    podman_save(tmp_path / "podman", rootfs, "localhost/img-podman:1", archive)
    shutil.rmtree(tmp_path / "podman", ignore_errors=True)
    loaded = images.ctrctl("load", "-q", "-i", str(archive))
    assert loaded.stdout == "Loaded image: localhost/img-podman:1\n", loaded.stderr
    assert images.out("img-podman:1", "/bin/sh", "-c", "echo $((6*7))") == "42\n"


def _inspect(images: Images, ref: str) -> dict[str, Any]:
    result = images.ctrctl("image", "inspect", ref)
    assert result.returncode == 0, result.stderr
    image: dict[str, Any] = json.loads(result.stdout)[0]
    return image


def test_the_store_keeps_what_a_running_container_uses(images: Images) -> None:
    ref = images.publish("held", [[Entry("held", data=b"still here\n")]])
    images.out(ref, "/bin/true")  # pulled
    layers = [Path(layer["Path"]) for layer in _inspect(images, ref)["Layers"]]
    proc = images.start(*NO_NET, "-q", "--name", "img-held", "--image", ref, "--", "/bin/sh",
                        "-c", "trap 'exit 0' TERM; echo ready; sleep 60 & wait")
    try:
        assert _inspect(images, ref)["Containers"] == ["img-held"]
        refused = images.ctrctl("rmi", ref)
        assert refused.returncode == 1
        assert "is in use by container(s) img-held" in refused.stderr
        assert images.ctrctl("rmi", "-f", ref).returncode == 0
        assert images.ctrctl("image", "prune").returncode == 0
        assert all(layer.is_dir() for layer in layers)  # the container's layers stay
        assert (layers[-1] / "held").read_text() == "still here\n"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert images.ctrctl("image", "prune").returncode == 0
    assert not any(layer.exists() for layer in layers)  # released with the container


def test_a_failed_start_releases_the_image(images: Images) -> None:
    ref = images.publish("failing")
    result = images.ctrctl("run", "--rm", *NO_NET, "-q", "--name", "img-failing", "--image",
                           ref, "--", "/no/such/program")
    assert result.returncode != 0
    assert _inspect(images, ref)["Containers"] == []
    assert images.ctrctl("rmi", ref).returncode == 0


def test_image_inspect_shows_labels_and_exposed_ports(images: Images) -> None:
    ref = images.publish("labels", config={"Labels": {"org.example.team": "ctr"},
                                           "ExposedPorts": {"80/tcp": {}, "53/udp": {}},
                                           "Cmd": ["/bin/sh"]})
    subprocess.run(images.command("pull", "-q", ref), check=True, env=images.environ,
                   capture_output=True, timeout=120)
    config = _inspect(images, ref)["Config"]
    assert config["Labels"] == {"org.example.team": "ctr"}
    assert config["ExposedPorts"] == ["80/tcp", "53/udp"]
