"""``GET /v1/containers/NAME/logs``: a container's output as a text stream, as ``docker logs``
gives it: ``tail=N``, ``since``/``until`` (docker's forms, ``model.logs.instant``),
``timestamps=1``, ``previous=1`` (the run before the last one), ``follow=1``. The files and how
they are read: ``supervisor.daemon.logfiles``.

Follow polls the file rather than using inotify: one stat-and-read every ``POLL`` seconds per
follower costs nothing measurable, works on any file system, and needs no watch descriptors. File
I/O runs in a worker thread so a large tail never stalls the event loop. Following ends when the
client goes away, when ctrd shuts down, when ``until`` has passed, or when the container is no
longer running (and has nothing more to read), as ``docker logs -f`` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from aiohttp import web

from supervisor.api import bodies
from supervisor.api.context import CLOSING, backend
from supervisor.api.openapi import TEXT, Param, operation
from supervisor.daemon.logfiles import LogReader, Query
from supervisor.daemon.states import State
from supervisor.daemon.view import Backend, NotFound
from supervisor.model import logs as records
from supervisor.model.errors import Invalid

POLL = 0.2  # seconds between looks at the file while following
# States in which more output may still come (a container in back-off will run again).
_LIVE = frozenset(s.value for s in (State.STARTING, State.RUNNING, State.STOPPING, State.BACKOFF))
TIME_SCHEMA = {"type": "string", "description": "RFC 3339 (2026-12-01T10:00:00Z), UNIX seconds "
               "(1764583200.5), or a duration before now (10m)"}

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


def _instant(request: web.Request, key: str) -> int | None:
    """A time of ``since`` or ``until``, read by the model's parser."""
    value = request.query.get(key)
    if value is None:
        return None
    try:
        return records.instant(value)
    except Invalid as exc:
        raise bodies.FieldError(key, str(exc)) from None


def query(request: web.Request) -> tuple[Query, int | None]:
    """The selection the request asks for, and its ``until`` (which ends following)."""
    since, until = _instant(request, "since"), _instant(request, "until")
    return Query(since=None if since is None else records.stamp(since),
                 until=None if until is None else records.stamp(until),
                 tail=bodies.count(request, "tail"),
                 timestamps=bodies.flag(request, "timestamps"),
                 previous=bodies.flag(request, "previous")), until


def _live(ctrd: Backend, name: str) -> bool:
    try:
        return ctrd.get(name).state in _LIVE
    except NotFound:
        return False


def _client_gone(request: web.Request) -> bool:
    return request.transport is None or request.transport.is_closing()


async def _wait(closing: asyncio.Event) -> bool:
    """Sleep one poll interval; True if the server is shutting down."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(closing.wait(), POLL)
    return closing.is_set()


@routes.get("/v1/containers/{name}/logs")
@operation(TEXT, errors=(400, 404), query={
    "follow": Param("keep streaming while the container may write more", bodies.FLAG_SCHEMA),
    "tail": Param("only the last N lines", bodies.COUNT_SCHEMA),
    "since": Param("only lines written at or after this time", TIME_SCHEMA),
    "until": Param("only lines written at or before this time", TIME_SCHEMA),
    "timestamps": Param("each line after the time it was written (RFC 3339, nanoseconds, UTC)",
                        bodies.FLAG_SCHEMA),
    "previous": Param("only the output of the run before the last one", bodies.FLAG_SCHEMA)})
async def logs(request: web.Request) -> web.StreamResponse:
    """A container's output, as ``docker logs`` gives it."""
    ctrd, name = backend(request), request.match_info["name"]
    follow = bodies.flag(request, "follow")
    selection, until = query(request)
    ctrd.get(name)  # 404 before the stream starts
    reader = await asyncio.to_thread(LogReader, ctrd.log_path(name), selection)
    response = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
    try:
        await response.prepare(request)
        while data := await asyncio.to_thread(reader.read):
            await response.write(data)
        while follow and not selection.previous:
            live = _live(ctrd, name)  # looked at before reading: no line is lost
            while data := await asyncio.to_thread(reader.more):
                await response.write(data)
            if not live or (until is not None and time.time_ns() > until) \
                    or _client_gone(request) or await _wait(request.app[CLOSING]):
                break
        await response.write_eof()
    except ConnectionResetError:
        pass  # the client went away while we wrote
    except OSError as exc:  # the headers are sent: end the stream, say why in ctrd's log
        log.warning("logs of %s: %s", name, exc)
    finally:
        reader.close()
    return response
