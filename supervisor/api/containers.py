"""``/v1/containers``: list, inspect, control and launch containers."""

from __future__ import annotations

import os
import stat
from collections.abc import Awaitable, Callable

from aiohttp import web

from supervisor.api import bodies, fds
from supervisor.api.context import backend
from supervisor.api.openapi import VIEW, VIEWS, Param, json_body, operation
from supervisor.daemon.view import Backend, ContainerView
from supervisor.model.errors import Invalid
from supervisor.model.signals import SIGKILL, signal
from supervisor.model.values import boolean, string, string_list

routes = web.RouteTableDef()


def _definition(value: object) -> str:
    if not string(value):
        raise Invalid("the name of a stored definition is required")
    return str(value)


LAUNCH = bodies.Body({
    "definition": bodies.Key({"type": "string", "minLength": 1,
                              "description": "the stored definition to run"},
                             _definition, required=True),
    "name": bodies.Key({"type": "string", "description": "default: DEFINITION-N"}, string),
})
START = bodies.Body({
    "wait": bodies.Key({"type": "boolean", "description": "answer once it is ready (its notify: "
                        "READY=1, a passing health check), not only once it runs"}, boolean),
    "sockets": bodies.Key({"type": "array", "items": {"type": "string"},
                           "description": "LISTEN_FDNAMES of the listening sockets sent with "
                           "the request (SCM_RIGHTS), in order: given to PID 1 as fds 3.. at "
                           "every start until it is stopped"}, string_list),
})
KILL = bodies.Body({
    "signal": bodies.Key({"anyOf": [{"type": "string"}, {"type": "integer"}],
                          "description": "a name (TERM, SIGTERM) or number; default KILL"},
                         signal),
})


def _view(view: ContainerView, status: int = 200) -> web.Response:
    return web.json_response(view.to_dict(), status=status)


@routes.get("/v1/containers")
@operation(VIEWS)
async def list_containers(request: web.Request) -> web.Response:
    """Every container ctrd knows: those of its definitions and the instances launched."""
    return web.json_response([view.to_dict() for view in backend(request).containers()])


@routes.post("/v1/containers")
@operation(VIEW, 201, body=json_body(LAUNCH.schema), errors=(400, 404, 409))
async def launch(request: web.Request) -> web.Response:
    """Launch an instance of a stored definition; answers once it runs."""
    body = await LAUNCH.read(request)
    return _view(await backend(request).launch(body["definition"], body.get("name")),
                 status=201)


@routes.delete("/v1/containers")
@operation(None, 204)
async def remove_all(request: web.Request) -> web.Response:
    """Stop every container and forget the instances."""
    await backend(request).remove_all()
    return web.Response(status=204)


@routes.get("/v1/containers/{name}")
@operation(VIEW, errors=(404,))
async def get(request: web.Request) -> web.Response:
    """One container."""
    return _view(backend(request).get(request.match_info["name"]))


@routes.delete("/v1/containers/{name}")
@operation(None, 204, errors=(404, 409))
async def remove(request: web.Request) -> web.Response:
    """Stop a container and forget it (an instance is gone; a definition's comes back)."""
    await backend(request).remove(request.match_info["name"])
    return web.Response(status=204)


@routes.post("/v1/containers/{name}/start")
@operation(VIEW, body=json_body(START.schema), errors=(400, 404, 409))
async def start(request: web.Request) -> web.Response:
    """Start a container; answers once it runs (``wait``: once it is ready).

    Socket activation: the listening sockets systemd passed come with the request on the Unix
    socket (SCM_RIGHTS), named in ``sockets``; ctrd keeps them for the container."""
    passed = fds.received(request)
    try:
        body = await START.read(request)
        names = body.get("sockets", ())
        if len(names) != len(passed):
            raise bodies.FieldError("sockets", f"{len(names)} name(s) for {len(passed)} "
                                    "descriptor(s) sent with the request")
        for fd in passed:
            if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                raise bodies.FieldError("sockets", "a descriptor sent is not a socket")
    except BaseException:
        for fd in passed:
            os.close(fd)
        raise
    return _view(await backend(request).start(request.match_info["name"],
                                              wait=body.get("wait", False),
                                              sockets=list(zip(names, passed, strict=True))))


Action = Callable[[Backend, str], Awaitable[ContainerView]]  # the POSTs with no body
ACTIONS: dict[str, Action] = {
    "stop": lambda ctrd, name: ctrd.stop(name),
    "restart": lambda ctrd, name: ctrd.restart(name),
    "freeze": lambda ctrd, name: ctrd.freeze(name),
    "thaw": lambda ctrd, name: ctrd.thaw(name),
}


@routes.post(f"/v1/containers/{{name}}/{{action:{'|'.join(ACTIONS)}}}")
@operation(VIEW, errors=(404, 409), path={"action": Param(
    "stop, restart, freeze or thaw",
    {"type": "string", "enum": list(ACTIONS)})})
async def act(request: web.Request) -> web.Response:
    """Stop, restart, freeze or thaw a container; answers with its view after."""
    action = ACTIONS[request.match_info["action"]]
    return _view(await action(backend(request), request.match_info["name"]))


@routes.post("/v1/containers/{name}/kill")
@operation(VIEW, body=json_body(KILL.schema), errors=(400, 404, 409))
async def kill(request: web.Request) -> web.Response:
    """Send a signal to a container's PID 1.

    Docker's default: SIGKILL unless the body names another signal."""
    body = await KILL.read(request)
    return _view(await backend(request).kill(request.match_info["name"],
                                             body.get("signal", SIGKILL)))


@routes.patch("/v1/containers/{name}/resources")
@operation(VIEW, body=json_body(bodies.RESOURCES_SCHEMA), errors=(400, 404, 409), query={
    "persist": Param("also write them to a drop-in of the definition", bodies.FLAG_SCHEMA)})
async def update(request: web.Request) -> web.Response:
    """Change a container's resource limits.

    New limits for the running container, each read as the definition key of its name;
    ``?persist=1`` also writes them to a drop-in of its definition, for every later start."""
    resources = bodies.resources(await bodies.json_object(request))
    return _view(await backend(request).update(request.match_info["name"], resources,
                                               persist=bodies.flag(request, "persist")))


@routes.get("/v1/containers/{name}/exec")
@operation(json_body({"type": "object"}), errors=(404, 409))
async def exec_info(request: web.Request) -> web.Response:
    """What ``ctrctl exec`` needs to join the container itself: PID 1 and the process defaults."""
    return web.json_response(backend(request).exec_info(request.match_info["name"]))

