"""What ctrd's log says of requests: one line for a malformed one, not a traceback.

aiohttp logs a request its parser refused at ERROR, with the parser's traceback, and then an
access line for the stand-in request it answers 400 to; a fuzzer or a port scanner would fill
the log with both. A malformed request becomes one WARNING line with the parser's reason.
"""

from __future__ import annotations

import logging

from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_log import AccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

_UNPARSED = "UNKNOWN"  # the method of aiohttp's stand-in for a request it could not read


class _OneLine(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError):
            reason = error.message.strip().splitlines()[0].rstrip(":") if error.message else ""
            record.msg, record.args = "malformed request: %s", (reason or error.code,)
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


class AccessLog(AccessLogger):
    """aiohttp's access log without the line for a request it could not parse."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        if request.method != _UNPARSED:
            super().log(request, response, time)


def install() -> None:
    logger = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, _OneLine) for f in logger.filters):
        logger.addFilter(_OneLine())
