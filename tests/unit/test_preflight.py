"""What ``ctrctl check`` finds before a start (supervisor.runtime.preflight), against directory
images made in a temporary directory: the command as execvpe would find it inside the image,
and bind sources on the host."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from supervisor.model.spec import ContainerSpec, MountSpec
from supervisor.runtime.preflight import problems, resolve


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """DATA_DIR with the image "box": bin/busybox, relative links as Debian's busybox has them
    (usr/sbin/httpd), one absolute link, a plain file and a directory."""
    root = tmp_path / "data" / "images" / "box"
    for directory in ("bin", "usr/sbin", "usr/bin", "etc", "opt/app"):
        (root / directory).mkdir(parents=True)
    (root / "bin" / "busybox").touch(mode=0o755)
    (root / "bin" / "sh").symlink_to("busybox")
    (root / "usr" / "sbin" / "httpd").symlink_to("../../bin/busybox")
    (root / "usr" / "bin" / "env").symlink_to("/bin/busybox")  # absolute: inside the image
    (root / "usr" / "bin" / "host-only").symlink_to(os.path.realpath(sys.executable))
    (root / "usr" / "bin" / "loop").symlink_to("loop")
    (root / "etc" / "passwd").write_text("root:x:0:0::/:/bin/sh\n")
    (root / "opt" / "app" / "run").touch(mode=0o755)
    return tmp_path / "data"


def check(data: Path, *command: str, **spec: object) -> list[tuple[tuple[str | int, ...], str]]:
    return problems(ContainerSpec(name="web", image="box", command=command or None,
                                  **spec), data)  # type: ignore[arg-type]


def test_a_command_the_image_has_passes(data: Path) -> None:
    for command in ("/usr/sbin/httpd", "/bin/sh", "httpd", "env", "/usr/bin/../sbin/./httpd"):
        assert check(data, command, "-f") == [], command
    assert check(data) == []  # no command: the shell, which the image has


def test_a_path_the_image_lacks_is_named_with_where_it_is(data: Path) -> None:
    assert check(data, "/bin/httpd", "-f", "-p", "80") == [
        (("container", "command", 0), "/bin/httpd is not in the image (it has /usr/sbin/httpd)")]


def test_a_name_is_looked_up_through_the_path_the_container_gets(data: Path) -> None:
    assert check(data, "run") == [(
        ("container", "command", 0), "run is in no directory of the image's PATH "
        "(/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)")]
    assert check(data, "run", environment=(("PATH", "/opt/app:/bin"),)) == []


@pytest.mark.parametrize(("command", "reason"), [
    ("/etc/passwd", "/etc/passwd in the image is not an executable file"),
    ("/opt/app", "/opt/app in the image is not an executable file"),
    ("/usr/bin/loop", "/usr/bin/loop is not in the image"),
    # a link to an absolute path is followed inside the image, never to the host's file
    ("/usr/bin/host-only", "/usr/bin/host-only is not in the image"),
    ("/etc/passwd/x", "/etc/passwd/x is not in the image"),
])
def test_what_exec_would_refuse(data: Path, command: str, reason: str) -> None:
    assert check(data, command) == [(("container", "command", 0), reason)]


def test_the_key_named_is_the_one_that_gave_the_program(data: Path) -> None:
    assert check(data, "-c", "true", entrypoint=("/bin/bash",)) == [
        (("container", "entrypoint", 0), "/bin/bash is not in the image")]


def test_a_program_a_mount_provides_is_left_to_the_start(data: Path, tmp_path: Path) -> None:
    mount = MountSpec(target="/app", source=str(tmp_path))
    assert check(data, "/app/server", mounts=(mount,)) == []


def test_a_bind_source_that_does_not_exist(data: Path, tmp_path: Path) -> None:
    mounts = (MountSpec(target="/www", source=str(tmp_path / "www"), read_only=True),
              MountSpec(target="/tmp", type="tmpfs"),
              MountSpec(target="/etc/hosts", source=str(data)))
    assert check(data, "/bin/sh", mounts=mounts) == [
        (("mounts", 0, "source"), f"{tmp_path / 'www'} does not exist on this host")]


def test_images_that_cannot_be_looked_into_are_left_to_the_start(data: Path) -> None:
    (data / "images" / "packed.tar").write_bytes(b"")
    for image in ("packed", "registry.example.com/app:1", "no-such-image"):
        assert problems(ContainerSpec(name="web", image=image, command=("/x",)), data) == []


def test_layers_top_first_the_upper_one_shadows(tmp_path: Path) -> None:
    upper, lower = tmp_path / "upper", tmp_path / "lower"
    (upper / "bin").mkdir(parents=True)
    (lower / "bin").mkdir(parents=True)
    (lower / "bin" / "tool").touch(mode=0o755)
    (upper / "bin" / "tool").touch(mode=0o644)  # replaced by a file that is not executable
    (lower / "bin" / "other").touch(mode=0o755)
    found = resolve([str(upper), str(lower)], "/bin/tool")
    assert found is not None and found.st_mode & 0o777 == 0o644
    assert resolve([str(upper), str(lower)], "/bin/other") is not None
    os.setxattr(upper / "bin", "user.overlay.opaque", b"y")  # what a layer's .wh..wh..opq makes
    assert resolve([str(upper), str(lower)], "/bin/other") is None
