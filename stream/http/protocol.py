"""Errors aiohttp's HTTP parser finds before any handler runs (a bad Content-Length, a
header over the size limit, TLS or other bytes that are not HTTP): a short JSON 400 that
never echoes the client's bytes, and one INFO line instead of a traceback per request."""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

__all__ = ["JsonErrorRunner"]

log = logging.getLogger(__name__)

_REASONS = {
    "LineTooLong": "a request line or header is too long",
    "BadHttpMethod": "not an HTTP request (TLS to a plain HTTP port?)",
    "BadStatusLine": "malformed request line",
    "InvalidHeader": "malformed header",
    "InvalidURLError": "malformed URL",
    "ContentLengthError": "bad Content-Length",
    "TransferEncodingError": "bad Transfer-Encoding",
}


class _JsonErrorHandler(RequestHandler):
    def handle_error(self, request: Any, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if status >= 500:  # a fault of ours, not the client's: keep aiohttp's full log line
            return super().handle_error(request, status, exc, message)
        name = type(exc).__name__ if exc is not None else "BadHttpMessage"
        reason = _REASONS.get(name, "malformed HTTP request")
        remote = getattr(request, "remote", None)
        log.info("http: refused a malformed request from %s: %s (%s)", remote, reason, name)
        if request.writer.output_size > 0:
            raise ConnectionError("response already started")
        body = json.dumps({"detail": f"Bad request: {reason}."})
        resp = web.Response(status=400, text=body, content_type="application/json")
        resp.force_close()
        return resp


class _JsonErrorServer(web.Server):
    def __call__(self) -> RequestHandler:
        try:
            return _JsonErrorHandler(self, loop=self._loop, **self._kwargs)
        except TypeError:  # an older aiohttp signature
            return super().__call__()


class JsonErrorRunner(web.AppRunner):
    """``web.AppRunner`` whose connections answer parser errors with JSON (see module)."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = _JsonErrorServer
        return server
