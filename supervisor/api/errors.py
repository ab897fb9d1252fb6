"""Every failure as JSON ``{"error": MESSAGE, "detail": ...}`` with a fitting status; no traceback.

The message is one line a client can print as is (``ctrctl: container web: not found``); the
traceback of an unexpected exception goes to ctrd's log, never to the client.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from supervisor.config.errors import DefinitionError, DefinitionNotFound
from supervisor.daemon.view import Conflict, NotFound

log = logging.getLogger(__name__)


def error_response(status: int, message: str, detail: Any = None,
                   headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message, "detail": detail}, status=status,
                             headers=headers)


def _http_error(request: web.Request, exc: web.HTTPException) -> web.Response:
    """aiohttp's own errors (no such route, wrong method, body too large) in the same shape."""
    detail: dict[str, Any] = {"method": request.method, "path": request.path}
    headers = {}
    if isinstance(exc, web.HTTPMethodNotAllowed):
        detail["allowed"] = sorted(exc.allowed_methods)
        headers["Allow"] = ",".join(detail["allowed"])
    return error_response(exc.status, exc.reason.lower(), detail, headers)


def _status(exc: Exception) -> int:
    if isinstance(exc, NotFound | DefinitionNotFound):
        return 404
    if isinstance(exc, Conflict):
        return 409
    if isinstance(exc, ValueError):  # view.Invalid included
        return 400
    return 500


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _http_error(request, exc)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        status = _status(exc)
        if status == 500:
            log.exception("%s %s failed", request.method, request.path)
        return error_response(status, str(exc) or type(exc).__name__, _detail(exc, status))


def _detail(exc: Exception, status: int) -> Any:
    """What a program may want beyond the message: the bad key, every problem of a definition."""
    if isinstance(exc, DefinitionError):
        return {"problems": [{"source": None if p.source is None else str(p.source),
                              "key": p.key, "reason": p.reason} for p in exc.problems]}
    if status == 500:
        return {"exception": type(exc).__name__}
    return getattr(exc, "detail", None)

