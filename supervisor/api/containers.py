"""``/v1/containers``: list, inspect, control and launch containers."""

from __future__ import annotations

import signal
from collections.abc import Awaitable, Callable

from aiohttp import web

from supervisor.api import bodies
from supervisor.api.context import backend
from supervisor.daemon.view import Backend, ContainerView

routes = web.RouteTableDef()


def _view(view: ContainerView, status: int = 200) -> web.Response:
    return web.json_response(view.to_dict(), status=status)


@routes.get("/v1/containers")
async def list_containers(request: web.Request) -> web.Response:
    return web.json_response([view.to_dict() for view in backend(request).containers()])


@routes.post("/v1/containers")
async def launch(request: web.Request) -> web.Response:
    body = bodies.only(await bodies.json_object(request), "definition", "name")
    definition, name = body.get("definition"), body.get("name")
    if not isinstance(definition, str) or not definition:
        raise bodies.FieldError("definition", "the name of a stored definition is required")
    if name is not None and not isinstance(name, str):
        raise bodies.FieldError("name", f"not a string: {name!r}")
    return _view(await backend(request).launch(definition, name), status=201)


@routes.delete("/v1/containers")
async def remove_all(request: web.Request) -> web.Response:
    await backend(request).remove_all()
    return web.Response(status=204)


@routes.get("/v1/containers/{name}")
async def get(request: web.Request) -> web.Response:
    return _view(backend(request).get(request.match_info["name"]))


@routes.delete("/v1/containers/{name}")
async def remove(request: web.Request) -> web.Response:
    await backend(request).remove(request.match_info["name"])
    return web.Response(status=204)


Action = Callable[[Backend, str], Awaitable[ContainerView]]  # the POSTs with no body
ACTIONS: dict[str, Action] = {
    "start": lambda ctrd, name: ctrd.start(name),
    "stop": lambda ctrd, name: ctrd.stop(name),
    "restart": lambda ctrd, name: ctrd.restart(name),
    "freeze": lambda ctrd, name: ctrd.freeze(name),
    "thaw": lambda ctrd, name: ctrd.thaw(name),
}


@routes.post(f"/v1/containers/{{name}}/{{action:{'|'.join(ACTIONS)}}}")
async def act(request: web.Request) -> web.Response:
    action = ACTIONS[request.match_info["action"]]
    return _view(await action(backend(request), request.match_info["name"]))


@routes.post("/v1/containers/{name}/kill")
async def kill(request: web.Request) -> web.Response:
    """Docker's default: SIGKILL unless the body names another signal."""
    body = bodies.only(await bodies.json_object(request), "signal")
    signum = bodies.signal_number(body.get("signal", signal.SIGKILL.value))
    return _view(await backend(request).kill(request.match_info["name"], signum))


@routes.patch("/v1/containers/{name}/resources")
async def update(request: web.Request) -> web.Response:
    """New limits for the running container; ``?persist=1`` also writes them to a drop-in of
    its definition, for every later start."""
    resources = bodies.resources(await bodies.json_object(request))
    return _view(await backend(request).update(request.match_info["name"], resources,
                                               persist=bodies.flag(request, "persist")))


@routes.get("/v1/containers/{name}/exec")
async def exec_info(request: web.Request) -> web.Response:
    """What ``ctrctl exec`` needs to join the container itself: PID 1 and the process defaults."""
    return web.json_response(backend(request).exec_info(request.match_info["name"]))

