"""``GET /v1/containers/NAME/logs?tail=N&follow=1``: a container's output file as a text stream.

Follow polls the file rather than using inotify: one stat-and-read every ``POLL`` seconds per
follower costs nothing measurable, works on any file system, and needs no watch descriptors. File
I/O runs in a worker thread so a large tail never stalls the event loop. Following ends when the
client goes away, when ctrd shuts down, or when the container is no longer running (and has
nothing more to read), as ``docker logs -f`` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path

from aiohttp import web

from supervisor.api import bodies
from supervisor.api.context import CLOSING, backend
from supervisor.api.openapi import TEXT, Param, operation
from supervisor.daemon.states import State
from supervisor.daemon.view import Backend, NotFound

POLL = 0.2  # seconds between looks at the file while following
CHUNK = 1 << 20  # most bytes read at once
_BLOCK = 1 << 16
# States in which more output may still come (a container in back-off will run again).
_LIVE = frozenset(s.value for s in (State.STARTING, State.RUNNING, State.STOPPING, State.BACKOFF))

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


def tail_offset(path: Path, lines: int | None) -> int:
    """Where the last ``lines`` lines of the file start (0 for all, or for a missing file).

    Reads backwards in blocks, so the tail of a large log costs only the bytes it returns.
    An unfinished last line (no newline yet) counts as a line.
    """
    if lines is None:
        return 0
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return 0
    try:
        end = pos = os.fstat(fd).st_size
        if lines == 0:
            return end
        wanted = lines + 1  # the newline before the first wanted line marks its start
        if end and os.pread(fd, 1, end - 1) != b"\n":
            wanted -= 1  # the unfinished last line has no newline of its own
        while pos > 0:
            start = max(0, pos - _BLOCK)
            block = os.pread(fd, pos - start, start)
            for index in range(len(block) - 1, -1, -1):
                if block[index] == 0x0A:
                    wanted -= 1
                    if wanted == 0:
                        return start + index + 1
            pos = start
        return 0
    finally:
        os.close(fd)


def read_from(path: Path, offset: int) -> tuple[bytes, int]:
    """Up to CHUNK bytes after ``offset`` and the offset after them; restarts a truncated file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return b"", 0
    try:
        if os.fstat(fd).st_size < offset:
            offset = 0
        data = os.pread(fd, CHUNK, offset)
        return data, offset + len(data)
    finally:
        os.close(fd)


def _live(ctrd: Backend, name: str) -> bool:
    try:
        return ctrd.get(name).state in _LIVE
    except NotFound:
        return False


def _client_gone(request: web.Request) -> bool:
    return request.transport is None or request.transport.is_closing()


async def _send_new(response: web.StreamResponse, path: Path, offset: int) -> int:
    while True:
        data, offset = await asyncio.to_thread(read_from, path, offset)
        if not data:
            return offset
        await response.write(data)


async def _wait(closing: asyncio.Event) -> bool:
    """Sleep one poll interval; True if the server is shutting down."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(closing.wait(), POLL)
    return closing.is_set()


@routes.get("/v1/containers/{name}/logs")
@operation(TEXT, errors=(400, 404), query={
    "follow": Param("keep streaming while the container may write more", bodies.FLAG_SCHEMA),
    "tail": Param("only the last N lines", bodies.COUNT_SCHEMA)})
async def logs(request: web.Request) -> web.StreamResponse:
    """A container's output, as ``docker logs`` gives it."""
    ctrd, name = backend(request), request.match_info["name"]
    follow, tail = bodies.flag(request, "follow"), bodies.count(request, "tail")
    ctrd.get(name)  # 404 before the stream starts
    path = ctrd.log_path(name)
    offset = await asyncio.to_thread(tail_offset, path, tail)
    response = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
    await response.prepare(request)
    try:
        while True:
            live = follow and _live(ctrd, name)  # looked at before reading: no line is lost
            offset = await _send_new(response, path, offset)
            if not live or _client_gone(request) or await _wait(request.app[CLOSING]):
                break
        await response.write_eof()
    except ConnectionResetError:
        pass  # the client went away while we wrote
    except OSError as exc:  # the headers are sent: end the stream, say why in ctrd's log
        log.warning("logs of %s: %s", name, exc)
    return response
