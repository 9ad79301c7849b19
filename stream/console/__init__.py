"""The web console at ``/ui/``: server-rendered pages (jinja2) with a little plain JavaScript.

``setup_console(app, token=..., pipeline=...)`` adds it to the Snapshot API's aiohttp app.
With a token, pages need a login (a signed session cookie, see ``auth``) and the console's
session also opens the ``/api/v1/`` routes for the browser (writes need the CSRF header).
Without a token it is open, and the server says so once in the log.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from stream.console.auth import Sessions, same_origin
from stream.console.nodes import ago
from stream.console.views import CONSOLE, JINJA, Console, routes

__all__ = ["setup_console"]

log = logging.getLogger(__name__)

STATIC_MAX_AGE_S = 300


def setup_console(app: web.Application, *, token: str | None, pipeline: Any = None,
                  nodes: Callable[[], list[dict]] | None = None,
                  link: Callable[[], dict] | None = None) -> None:
    """Add ``/ui/`` to ``app``.

    Args:
        token: the server token (None: the console is open).
        pipeline: the running Pipeline (``last_frame(camera)`` for thumbnails), or None.
        nodes: the hub's nodes (``Hub.nodes``): adds the Nodes page; None on a node.
        link: the hub's broker link (``Hub.link``) for the health page, or None.
    """
    from stream.http.api_events import API_AUTH

    sessions = Sessions(token) if token else None
    con = Console(sessions, pipeline, nodes=nodes, link=link)
    app[CONSOLE] = con
    env = aiohttp_jinja2.setup(
        app, loader=jinja2.PackageLoader("stream.console", "templates"), autoescape=True,
        app_key=JINJA, undefined=jinja2.StrictUndefined,
        filters={"plate": _plate, "when": _when, "direction": _direction, "ago": ago},
    )
    env.globals["static"] = _static_url
    if sessions is not None:
        app[API_AUTH] = sessions.allows
    else:
        log.warning("console: no server token set: the web console /ui/ and the /api/v1/ "
                    "event API are open to anyone who can reach this server")
    app.middlewares.append(_cross_site_guard)
    app.router.add_static("/ui/static/", _static_dir(), name="console-static",
                          append_version=False)
    app.add_routes(routes())
    app.cleanup_ctx.append(_live)
    app.on_shutdown.append(_close_streams)


@web.middleware
async def _cross_site_guard(request: web.Request, handler: Any) -> web.StreamResponse:
    """Writes to the console and the event API from another site's page are refused (a
    browser names that site in ``Origin``). With a token the session already needs the CSRF
    header; this also covers an open console, e.g. one bound to loopback."""
    if request.method not in ("GET", "HEAD", "OPTIONS") and \
            request.path.startswith(("/ui/", "/api/")) and not same_origin(request):
        return web.json_response({"detail": "Cross-site request refused."}, status=403)
    return await handler(request)


def _static_dir() -> Path:
    return Path(__file__).with_name("static")


def _static_url(name: str) -> str:
    return f"/ui/static/{name}"


async def _live(app: web.Application) -> AsyncIterator[None]:
    """New events from the store reach the open live pages."""
    import asyncio

    from stream.http.api_events import STORE

    con = app[CONSOLE]
    con.hub.attach(asyncio.get_running_loop())
    store = app.get(STORE)
    if store is not None:
        store.add_listener(con.hub.on_event)
    yield
    con.hub.close()
    if store is not None:
        store.remove_listener(con.hub.on_event)


async def _close_streams(app: web.Application) -> None:
    app[CONSOLE].hub.close()


def _plate(text: str | None) -> str:
    return (text or "").upper()


def _when(iso: str | None) -> str:
    """``2026-11-27T08:01:02.123456Z`` -> ``2026-11-27 08:01:02`` (the page adds "UTC")."""
    if not iso:
        return ""
    return iso.replace("T", " ")[:19]


def _direction(deg: Any) -> str:
    return "" if deg is None else f"{int(deg)}°"
