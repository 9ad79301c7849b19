"""CORS, as Plate Recognizer's docs promise for the Snapshot API ("allows requests from all
origins"): ``Access-Control-Allow-Origin`` on every answer (errors included) and ``OPTIONS``
preflights, for the origins of ``server.cors_origins`` (default ``*`` only when the server
has no token: a browser page must not get to use a token-protected server's answers unless
the operator says which origins may)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import hdrs, web

__all__ = ["CORS_ORIGINS", "cors_middleware", "preflight"]

CORS_ORIGINS = web.AppKey("cors_origins", tuple)

ALLOW_HEADERS = "Authorization, Content-Type"
EXPOSE_HEADERS = "Retry-After, X-Platestream-Ignored-Config"
MAX_AGE_S = "600"


def _allowed(request: web.Request, origins: tuple[str, ...]) -> str | None:
    """The Access-Control-Allow-Origin value for this request, or None."""
    if "*" in origins:
        return "*"
    origin = request.headers.get(hdrs.ORIGIN)
    return origin if origin and origin in origins else None


def _add_headers(request: web.Request, response: web.StreamResponse,
                 origins: tuple[str, ...]) -> None:
    allow = _allowed(request, origins)
    if allow is None or response.prepared:
        return
    response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = allow
    response.headers[hdrs.ACCESS_CONTROL_EXPOSE_HEADERS] = EXPOSE_HEADERS
    if allow != "*":
        response.headers.add(hdrs.VARY, "Origin")


def cors_middleware(origins: tuple[str, ...]) -> Callable:
    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        response = await handler(request)
        if origins:
            _add_headers(request, response, origins)
        return response

    return middleware


def preflight(methods: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """An ``OPTIONS`` handler answering a browser's preflight for a route taking ``methods``
    (no token needed: browsers never send credentials on a preflight)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        headers = {hdrs.ALLOW: f"{methods}, OPTIONS"}
        response = web.Response(status=204, headers=headers)
        if _allowed(request, request.app[CORS_ORIGINS]) is not None:
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_METHODS] = f"{methods}, OPTIONS"
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_HEADERS] = ALLOW_HEADERS
            response.headers[hdrs.ACCESS_CONTROL_MAX_AGE] = MAX_AGE_S
        return response

    return handler
