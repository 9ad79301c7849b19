"""The console's pages: live overview, events, event detail, known plates, outputs health,
and the login form. Pages read the store and the status in-process; the browser's scripts
use the JSON API (``/api/v1/``) for search, paging and known-plate edits."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

import aiohttp_jinja2
from aiohttp import web

from engine.geometry import crop_box
from stream.console.auth import Sessions
from stream.console.live import LiveHub

__all__ = ["CONSOLE", "Console", "routes"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
FILTERS = ("plate", "camera", "node", "since", "until", "known")
PAGE_SIZE = 50
LAST_PLATES = 6
RECENT = 20


class Console:
    """What the console's handlers share (one per app)."""

    def __init__(self, sessions: Sessions | None, pipeline: Any = None, *,
                 nodes: Callable[[], list[dict]] | None = None,
                 link: Callable[[], dict] | None = None) -> None:
        self.sessions = sessions
        self.pipeline = pipeline
        self.nodes = nodes  # set on a hub: its nodes (online/offline, cameras)
        self.link = link  # set on a hub: its broker link
        self.hub = LiveHub()


CONSOLE = web.AppKey("console", Console)


def _api(app: web.Application) -> tuple[Any, Any, Callable[[], dict] | None]:
    from stream.http.api_events import KNOWN, OUTPUTS, STORE

    return app.get(STORE), app.get(KNOWN), app.get(OUTPUTS)


def _status(app: web.Application) -> dict[str, Any]:
    """Cameras and outputs as /status/ reports them (called off the loop)."""
    from stream.http.routes import STATE

    st = app.get(STATE)
    provided = st.status_provider() if st is not None and st.status_provider else {}
    _, _, outputs = _api(app)
    outs = outputs() if outputs is not None else provided.get("outputs", {})
    body = {"cameras": provided.get("cameras", {}), "outputs": outs,
            "engine": provided.get("engine") or (st.worker.stats() if st else {})}
    con = app.get(CONSOLE)
    if con is not None and con.nodes is not None:  # a hub: its nodes, live
        body["nodes"] = con.nodes()
    return body


def page(template: str) -> Callable[[Callable[..., Awaitable[dict[str, Any]]]], Handler]:
    """A page handler: login required (when a token is set), rendered with ``template``."""

    def wrap(fn: Callable[..., Awaitable[dict[str, Any]]]) -> Handler:
        @functools.wraps(fn)
        async def handler(request: web.Request) -> web.StreamResponse:
            con = request.app[CONSOLE]
            nonce = None
            if con.sessions is not None:
                nonce = con.sessions.request_nonce(request)
                if nonce is None:
                    raise web.HTTPSeeOther(
                        "/ui/login?" + urlencode({"next": request.path_qs}))
            ctx = await fn(request)
            if isinstance(ctx, web.StreamResponse):
                return ctx
            ctx.setdefault("http_status", 200)
            resp = aiohttp_jinja2.render_template(template, request, {
                **ctx,
                "csrf": con.sessions.csrf(nonce) if con.sessions and nonce else "",
                "login": con.sessions is not None,
                "path": request.path,
                "query": request.query.get("plate", ""),
                "hub": con.nodes is not None,
            }, status=ctx["http_status"], app_key=JINJA)
            resp.headers["Cache-Control"] = "no-store"
            return resp

        return handler

    return wrap


JINJA = web.AppKey("console_jinja", object)


def _require(request: web.Request) -> None:
    """For non-page routes (SSE, thumbnails): 401 without a session."""
    con = request.app[CONSOLE]
    if con.sessions is not None and con.sessions.request_nonce(request) is None:
        raise web.HTTPUnauthorized(text='{"detail": "Log in at /ui/login."}',
                                   content_type="application/json")


# -- pages -------------------------------------------------------------------------------
@page("overview.html")
async def overview(request: web.Request) -> dict[str, Any]:
    store, _, _ = _api(request.app)
    status = await asyncio.to_thread(_status, request.app)
    last: dict[str, list[dict]] = {}
    recent: list[dict] = []
    if store is not None:
        from stream.store import EventQuery

        page_ = await asyncio.to_thread(store.query, EventQuery(limit=RECENT))
        recent = [e.to_json() for e in page_.events]
        for name in status["cameras"]:
            page_ = await asyncio.to_thread(store.query, EventQuery(camera=name,
                                                                     limit=LAST_PLATES))
            last[name] = [e.to_json() for e in page_.events]
    return {"title": "Live", "status": status, "last": last, "recent": recent,
            "store": store is not None}


@page("events.html")
async def events(request: web.Request) -> dict[str, Any]:
    store, known, _ = _api(request.app)
    filters = {k: request.query.get(k, "").strip() for k in FILTERS}
    keep = {k: v for k, v in filters.items() if v}
    ctx: dict[str, Any] = {"title": "Events", "filters": filters, "events": [], "next": None,
                           "qs": urlencode(keep), "paged": False,
                           "error": None, "store": store is not None,
                           "lists": known.names() if known is not None else [],
                           "cameras": await asyncio.to_thread(_camera_names, request.app),
                           "nodes": _node_ids(request.app)}
    if store is None:
        return ctx
    from stream.store import EventQuery, QueryError

    params = {k: v for k, v in filters.items() if v}
    if request.query.get("cursor"):
        params["cursor"] = request.query["cursor"]
    params["limit"] = str(PAGE_SIZE)
    try:
        q = EventQuery.from_params(params)
    except QueryError as exc:
        ctx.update(error={"param": exc.param, "detail": str(exc)}, http_status=400)
        return ctx
    result = await asyncio.to_thread(store.query, q)
    ctx["events"] = [e.to_json() for e in result.events]
    if result.next:
        ctx["next"] = "/ui/events?" + urlencode({**keep, "cursor": result.next})
    ctx["paged"] = bool(request.query.get("cursor"))
    return ctx


def _camera_names(app: web.Application) -> list[str]:
    """This server's cameras, or on a hub every node's (as their heartbeats name them)."""
    names = set(_status(app)["cameras"])
    con = app[CONSOLE]
    for n in con.nodes() if con.nodes is not None else []:
        names.update(n["cameras"])
    return sorted(names)


def _node_ids(app: web.Application) -> list[str]:
    con = app[CONSOLE]
    return [n["node_id"] for n in con.nodes()] if con.nodes is not None else []


@page("event.html")
async def event_detail(request: web.Request) -> dict[str, Any]:
    store, _, _ = _api(request.app)
    eid = request.match_info["event_id"]
    ev = await asyncio.to_thread(store.get, eid) if store is not None else None
    if ev is None:
        return {"title": "Event not found", "event": None, "event_id": eid, "http_status": 404}
    body = ev.to_json()
    return {"title": f"Event {body['plate'].upper()}", "event": body,
            "crop": plate_in_crop(body["data"]),
            "raw": json.dumps(body["data"], indent=2, ensure_ascii=False)}


@page("known.html")
async def known_plates(request: web.Request) -> dict[str, Any]:
    _, known, _ = _api(request.app)
    selected = request.query.get("list", "")
    if known is None:
        return {"title": "Known plates", "available": False, "lists": [], "entries": [],
                "selected": selected}
    entries = await asyncio.to_thread(known.entries, selected or None)
    return {"title": "Known plates", "available": True, "lists": known.lists(),
            "entries": [e.to_json() for e in entries], "selected": selected}


@page("health.html")
async def health(request: web.Request) -> dict[str, Any]:
    store, _, _ = _api(request.app)
    status = await asyncio.to_thread(_status, request.app)
    stats = await asyncio.to_thread(store.stats) if store is not None else None
    con = request.app[CONSOLE]
    link = await asyncio.to_thread(con.link) if con.link is not None else None
    return {"title": "Health", "status": status, "store_stats": stats, "link": link}


# -- live data ---------------------------------------------------------------------------
async def live(request: web.Request) -> web.StreamResponse:
    _require(request)
    con = request.app[CONSOLE]
    return await con.hub.stream(request, functools.partial(_status, request.app))


async def thumbnail(request: web.Request) -> web.Response:
    _require(request)
    con = request.app[CONSOLE]
    jpeg = await con.hub.thumbnail(con.pipeline, request.match_info["camera"])
    if jpeg is None:
        raise web.HTTPNotFound(text='{"detail": "No frame yet."}',
                               content_type="application/json")
    return web.Response(body=jpeg, content_type="image/jpeg",
                        headers={"Cache-Control": "no-store"})


# -- login ---------------------------------------------------------------------------------
def _next(target: str | None) -> str:
    """Only a console path: never a redirect off this server."""
    if target and target.startswith("/ui/") and not target.startswith("/ui//") \
            and "\\" not in target:
        return target
    return "/ui/"


async def login(request: web.Request) -> web.StreamResponse:
    con = request.app[CONSOLE]
    if con.sessions is None:
        raise web.HTTPSeeOther("/ui/")
    target = _next(request.query.get("next"))
    error = None
    status = 200
    if request.method == "POST":
        from stream.console.auth import same_origin

        form = await request.post()
        target = _next(str(form.get("next", "")))
        token = str(form.get("token", ""))
        if not same_origin(request):
            error, status = "This form must be sent from the console itself.", 403
        elif con.sessions.token_ok(token):
            resp = web.HTTPSeeOther(target)
            con.sessions.set_cookie(resp, request)
            raise resp
        else:
            await asyncio.sleep(0.5)  # slows down guessing
            error, status = ("Wrong token." if token else "Enter the token."), 403
    return aiohttp_jinja2.render_template("login.html", request, {
        "title": "Log in", "next": target, "error": error, "login": True, "path": "/ui/login",
        "csrf": "", "query": "", "bare": True,
    }, status=status, app_key=JINJA)


async def logout(request: web.Request) -> web.StreamResponse:
    con = request.app[CONSOLE]
    if con.sessions is not None:
        import hmac

        from stream.console.auth import COOKIE, same_origin

        nonce = con.sessions.request_nonce(request)
        form = await request.post()
        sent = str(form.get("csrf", ""))
        if nonce is not None and (not same_origin(request) or not hmac.compare_digest(
                sent.encode("utf-8", "replace"), con.sessions.csrf(nonce).encode())):
            raise web.HTTPForbidden(text='{"detail": "Missing CSRF token."}',
                                    content_type="application/json")
        con.sessions.revoke(request.cookies.get(COOKIE))
        resp = web.HTTPSeeOther("/ui/login")
        resp.del_cookie(COOKIE, path="/")
        raise resp
    raise web.HTTPSeeOther("/ui/")


def plate_in_crop(data: dict[str, Any]) -> dict[str, int] | None:
    """Where the plate box lies in the stored vehicle image, which is cropped from the
    analysis frame as ``stream.events.event_image(.., "vehicle")`` does (``crop_box``): the
    vehicle's box, or the plate's box grown by twice its size when no vehicle was found."""
    try:
        r = data["results"][0]
        w, h = int(data["image_width"]), int(data["image_height"])
        pb = r["box"]
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    vb = (r.get("vehicle") or {}).get("box") or {}
    has_vehicle = bool((r.get("vehicle") or {}).get("score")) and \
        vb.get("xmax", 0) > vb.get("xmin", 0)
    box, pad = (vb, 0.0) if has_vehicle else (pb, 2.0)
    x1, y1, x2, y2 = crop_box(w, h, (box["xmin"], box["ymin"], box["xmax"], box["ymax"]),
                              pad, pad)
    return {"width": x2 - x1, "height": y2 - y1, "x": pb["xmin"] - x1, "y": pb["ymin"] - y1,
            "w": pb["xmax"] - pb["xmin"], "h": pb["ymax"] - pb["ymin"]}


def routes() -> list[web.AbstractRouteDef]:
    from stream.console.nodes import nodes_page

    return [
        web.get("/ui", _to_console),
        web.get("/ui/", overview),
        web.get("/ui/events", events),
        web.get("/ui/events/{event_id}", event_detail),
        web.get("/ui/known", known_plates),
        web.get("/ui/health", health),
        web.get("/ui/nodes", nodes_page),
        web.get("/ui/live", live),
        web.get("/ui/cameras/{camera}/frame.jpg", thumbnail),
        web.get("/ui/login", login),
        web.post("/ui/login", login),
        web.post("/ui/logout", logout),
    ]


async def _to_console(request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther("/ui/")
