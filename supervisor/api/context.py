"""What every route module reaches through the application: the backend and the shutdown flag."""

from __future__ import annotations

import asyncio

from aiohttp import web

from supervisor.daemon.view import Backend

BACKEND = web.AppKey("backend", Backend)
# Set when the server shuts down, so long-lived responses (``logs?follow=1``) end at once instead
# of holding ctrd's exit until aiohttp's shutdown timeout.
CLOSING = web.AppKey("closing", asyncio.Event)


def backend(request: web.Request) -> Backend:
    return request.app[BACKEND]
