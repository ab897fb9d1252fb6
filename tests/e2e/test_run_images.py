"""Every kind of image ``ctrctl run`` accepts, and the terminal an interactive container gets."""

from __future__ import annotations

import os
import select
import subprocess
import tarfile
import time
from pathlib import Path

from tests.conftest import REPO
from tests.e2e.conftest import Env

NO_NET = ("--network", "none")


def test_tarball_image_wrapped_in_one_directory(env: Env, busybox_image: Path,
                                                tmp_path: Path) -> None:
    archive = tmp_path / "rootfs.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(busybox_image, arcname="myroot")
    out = env.run("/bin/sh", "-c", "ls /bin/busybox && cat /etc/group | head -1",
                  flags=(*NO_NET, "--image", str(archive)), check=True).stdout
    assert out.split() == ["/bin/busybox", "root:x:0:"]


def test_filesystem_image_is_loop_mounted(env: Env, busybox_image: Path, tmp_path: Path) -> None:
    image = tmp_path / "busybox.img"
    subprocess.run(["mkfs.ext4", "-q", "-d", str(busybox_image), str(image), "16M"], check=True)
    out = env.run("/bin/sh", "-c", "echo written > /etc/new; cat /etc/new /etc/group",
                  flags=(*NO_NET, "--image", str(image)), check=True).stdout.split()
    # the image's files, and writes taken by the overlay's upper layer over the read-only ext4;
    # the leak check sees no loop device left afterwards
    assert out[:2] == ["written", "root:x:0:"]


def test_unknown_image_names_what_was_looked_for(env: Env) -> None:
    result = env.run("/bin/true", flags=(*NO_NET, "--image", "nosuchimage"))
    assert result.returncode == 125 and "nosuchimage" in result.stderr


def _on_a_terminal(env: Env, args: list[str], keys: bytes, timeout: float = 10) -> str:
    """Run ctrctl with a pseudo-terminal as its stdin/stdout, type ``keys``, return the screen."""
    master, slave = os.openpty()
    proc = subprocess.Popen(env.command(*args), stdin=slave, stdout=slave, stderr=slave,
                            cwd=REPO, env=env.environ, start_new_session=True)
    os.close(slave)
    output = b""
    try:
        time.sleep(0.5)
        os.write(master, keys)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if select.select([master], [], [], 0.1)[0]:
                try:
                    output += os.read(master, 4096)
                except OSError:
                    break
            elif proc.poll() is not None:
                break
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return output.decode(errors="replace")


def test_no_command_on_a_terminal_gives_an_interactive_shell(env: Env) -> None:
    screen = _on_a_terminal(env, ["run", "--rm", *NO_NET, "--hostname", "box"],
                            b"echo $((6*7)) $(hostname); tty; exit\r")
    assert "42 box" in screen
    # its own terminal, also as /dev/console
    assert "\r\n/dev/console\r\n" in screen or "\r\n/dev/pts/" in screen


def test_tty_flag_gives_the_command_a_terminal(env: Env) -> None:
    screen = _on_a_terminal(env, ["run", "--rm", *NO_NET, "-t", "--", "/bin/sh", "-c",
                                  "test -t 0 && test -t 1 && echo both-ttys"], b"")
    assert "both-ttys" in screen
