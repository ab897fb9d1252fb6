"""``POST /v1/containers/run`` and ``POST /v1/containers/NAME/wait``: ``ctrctl run`` handed to
ctrd (``supervisor.daemon.runs``), as ``docker run`` hands its container to dockerd.

The body is the run's options as typed (``supervisor.model.runoptions``), read by ctrd with the
same parsers as when ctrctl starts the container itself; the client's stdin, stdout and stderr
come with the request on the Unix socket (SCM_RIGHTS, ``supervisor.api.fds``), without them the
container runs detached (stdin /dev/null, its output in its log). ``wait`` answers once the
container does not run, with the exit code in its view, as docker's ``/containers/ID/wait``.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from aiohttp import web

from supervisor.api import bodies, fds
from supervisor.api.context import CLOSING, backend
from supervisor.api.errors import error_response
from supervisor.api.openapi import VIEW, json_body, operation
from supervisor.model import resources as limits
from supervisor.model import runoptions

routes = web.RouteTableDef()


def _option_schema(key: str) -> dict[str, Any]:
    if key in limits.BY_NAME:
        return bodies.limit_schema(limits.BY_NAME[key])
    if key in runoptions.FLAGS:
        return {"type": "boolean"}
    if key in runoptions.REPEATED:
        return {"type": "array", "items": {"type": "string"}}
    return {"type": "string"}


OPTIONS_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "description": "ctrctl run's flags by their long names with '_' for '-' (memory_max, "
    "read_only, security_opt, ...) as typed, repeated ones as arrays; command: the argv; cwd: "
    "where a relative mount source is taken from",
    "properties": {key: _option_schema(key) for key in runoptions.KEYS},
    "required": ["name"],
}


@routes.post("/v1/containers/run")
@operation(VIEW, 201, body=json_body(OPTIONS_SCHEMA), errors=(400, 409))
async def run(request: web.Request) -> web.Response:
    """Run a new container of ``ctrctl run``'s options; answers once it runs.

    Its stdin, stdout and stderr are those sent with the request (SCM_RIGHTS on the Unix socket;
    one terminal with ``tty``), else /dev/null and its log. It is an instance: ``DELETE`` it
    once ended (``wait``)."""
    passed = fds.received(request)
    try:
        options = await bodies.json_object(request)
    except BaseException:
        for fd in passed:
            os.close(fd)
        raise
    view = await backend(request).run(options, passed)
    return web.json_response(view.to_dict(), status=201)


@routes.post("/v1/containers/{name}/wait")
@operation(VIEW, errors=(404, 503))
async def wait(request: web.Request) -> web.StreamResponse:
    """Answer once the container does not run (at once if it does not), with its view then:
    ``exit_code`` is that of the run that ended. 503 if ctrd stops meanwhile: ask again."""
    ended = asyncio.ensure_future(backend(request).wait(request.match_info["name"]))
    closing = asyncio.ensure_future(request.app[CLOSING].wait())
    try:
        await asyncio.wait((ended, closing), return_when=asyncio.FIRST_COMPLETED)
    finally:
        closing.cancel()
    if not ended.done():
        ended.cancel()
        return error_response(503, "ctrd is stopping: wait again once it is back")
    return web.json_response(ended.result().to_dict())
