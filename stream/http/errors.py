"""JSON error bodies shaped as Plate Recognizer's clients expect, and the middleware that
turns every failure (ours, aiohttp's, unexpected ones) into one."""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import hdrs, web

__all__ = ["ApiError", "error_response", "error_middleware"]

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An expected failure of a request: status code, one-line detail, optional headers."""

    def __init__(
        self, status: int, detail: str, *, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = dict(headers or {})

    @classmethod
    def throttled(cls, reason: str, retry_after: float) -> ApiError:
        """429 with ``Retry-After``, worded like Plate Recognizer's throttling answer."""
        n = max(1, math.ceil(retry_after))
        detail = f"{reason} Expected available in {n} second{'s' if n > 1 else ''}."
        return cls(429, detail, headers={"Retry-After": str(n)})


def error_response(
    status: int, detail: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    """The error body: ``{"detail"}``, except 413 ``{"error"}`` and 429 with ``status_code``
    (the shapes Plate Recognizer's API returns and its clients parse)."""
    if status == 413:
        body: dict[str, object] = {"error": detail}
    elif status == 429:
        body = {"detail": detail, "status_code": 429}
    else:
        body = {"detail": detail}
    return web.json_response(body, status=status, headers=headers)


_KEEP_HEADERS = (hdrs.ALLOW, hdrs.RETRY_AFTER)


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.detail, exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {k: v for k, v in exc.headers.items() if k in _KEEP_HEADERS}
        detail = {
            404: "Not found.",
            405: f'Method "{request.method}" not allowed.',
            413: "Request body too large.",
        }.get(exc.status, exc.reason)
        return error_response(exc.status, detail, headers)
    except Exception:
        log.exception("http: %s %s failed", request.method, request.path)
        return error_response(500, "Internal server error.")
