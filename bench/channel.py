"""A POSIX shell inside an instance, driven line by line over its stdin and stdout.

The host, a ctr container, an LXC container and a VM are all reached the same way: a busybox
shell whose input is a pipe (``ctrctl run -i``, ``lxc-attach``) or the VM's serial line, so every
benchmark command runs in the instance with no per-runtime exec mechanism. Each command's end is
a random marker the shell prints with the exit status; kernel messages or a prompt in between
are ignored because only the marker's line is looked for.
"""

from __future__ import annotations

import os
import re
import secrets
import selectors
import subprocess
import time


class ChannelError(RuntimeError):
    pass


class Shell:
    """The shell of one instance; ``process`` reads the commands on stdin."""

    def __init__(self, process: subprocess.Popen[bytes], name: str) -> None:
        assert process.stdout is not None
        self.process = process
        self.name = name
        self._out = process.stdout.fileno()
        os.set_blocking(self._out, False)
        self._buffer = b""
        self.transcript: list[str] = []  # kept for the error message of a failed command

    def wait_for(self, pattern: str, timeout: float) -> tuple[str, re.Match[str]]:
        """Read until ``pattern`` matches; the text before the match and the match, both
        consumed."""
        regex = re.compile(pattern.encode())
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(self._out, selectors.EVENT_READ)
            while (found := regex.search(self._buffer)) is None:
                left = deadline - time.monotonic()
                if left <= 0 or self.process.poll() is not None:
                    raise ChannelError(f"{self.name}: no {pattern!r} within {timeout:.0f}s "
                                       f"(exit {self.process.poll()}):\n{self._tail()}")
                if selector.select(min(left, 1.0)) and not self._read():
                    self.process.wait(5)
        consumed = self._buffer[:found.end()].decode(errors="replace").replace("\r", "")
        self._buffer = self._buffer[found.end():]
        self.transcript = (self.transcript + consumed.splitlines())[-40:]
        match = re.search(pattern, consumed)
        assert match is not None
        return consumed[:match.start()], match

    def run(self, command: str, timeout: float) -> str:
        """Run one command line (stdin from /dev/null, stderr into stdout); its output, or an
        error naming the instance and status when it fails."""
        token = secrets.token_hex(6)
        self.send(f"( {command} ) </dev/null 2>&1; echo @@{token} $?")
        output, match = self.wait_for(rf"@@{token} (\d+)\n", timeout)
        if match.group(1) != "0":
            raise ChannelError(f"{self.name}: `{command}` exited {match.group(1)}:\n{output}")
        return output

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        self.process.stdin.flush()

    def _read(self) -> bool:
        """Take what is there; False at the end of the output (the instance is gone)."""
        try:
            chunk = os.read(self._out, 65536)
        except BlockingIOError:
            return True
        self._buffer += chunk
        return bool(chunk)

    def _tail(self) -> str:
        return "\n".join([*self.transcript, self._buffer.decode(errors="replace")][-20:])
