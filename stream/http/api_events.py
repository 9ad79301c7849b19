"""The query API over the event store and the known-plates lists (``/api/v1/...``).

Behind the server's token when one is set (``Authorization: Token X``); the web console may
register ``API_AUTH`` to let its own session through. Filters that do not parse answer 400
``{"detail", "param"}``.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

from stream import wire
from stream.http.errors import ApiError
from stream.known_plates import KnownPlates, KnownPlatesError
from stream.store import EventQuery, EventStore, QueryError

__all__ = ["STORE", "KNOWN", "OUTPUTS", "API_AUTH", "api_routes"]

STORE = web.AppKey("store", EventStore)
KNOWN = web.AppKey("known_plates", KnownPlates)
OUTPUTS = web.AppKey("outputs_status", Callable[[], dict])
API_AUTH = web.AppKey("api_auth", Callable[[web.Request], bool])

CSV_MAX = 100_000
CSV_DEFAULT = 10_000
CSV_PAGE = 1000
MAX_CSV_UPLOAD = 5 * 1024 * 1024


def _authorize(request: web.Request) -> None:
    from stream.http.routes import STATE, _client_key

    hook = request.app.get(API_AUTH)
    if hook is not None and hook(request):
        return
    if STATE in request.app:
        _client_key(request, request.app[STATE])


def _bad(exc: QueryError) -> web.Response:
    return web.json_response({"detail": str(exc), "param": exc.param}, status=400)


def _store(request: web.Request) -> EventStore:
    _authorize(request)
    store = request.app.get(STORE)
    if store is None:
        raise ApiError(503, "The event store is off (store: {enabled: false}).")
    return store


def _known(request: web.Request) -> KnownPlates:
    _authorize(request)
    known = request.app.get(KNOWN)
    if known is None:
        raise ApiError(503, "Known plates are not available without the pipeline.")
    return known


async def list_events(request: web.Request) -> web.Response:
    store = _store(request)
    try:
        q = EventQuery.from_params(request.query)
        page = await asyncio.to_thread(store.query, q)
    except QueryError as exc:
        return _bad(exc)
    return web.json_response(page.to_json())


async def get_event(request: web.Request) -> web.Response:
    store = _store(request)
    ev = await asyncio.to_thread(store.get, request.match_info["event_id"])
    if ev is None:
        raise ApiError(404, f"No event {request.match_info['event_id'][:80]!r}.")
    return web.json_response(ev.to_json())


async def event_image(request: web.Request) -> web.StreamResponse:
    store = _store(request)
    eid, kind = request.match_info["event_id"], request.match_info["kind"]
    path = await asyncio.to_thread(store.image_path, eid, kind)
    if path is None:
        raise ApiError(404, f"No {kind} image for event {eid[:80]!r}.")
    return web.FileResponse(path, headers={"Content-Type": "image/jpeg",
                                           "Cache-Control": "private, max-age=86400"})


async def events_csv(request: web.Request) -> web.StreamResponse:
    store = _store(request)
    try:
        q = EventQuery.from_params(request.query, max_limit=CSV_MAX, default_limit=CSV_DEFAULT)
    except QueryError as exc:
        return _bad(exc)
    resp = web.StreamResponse(headers={
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": 'attachment; filename="events.csv"'})
    await resp.prepare(request)
    left, cursor = q.limit, q.cursor
    first = True
    while left > 0:
        page_q = EventQuery(q.plate, q.camera, q.since, q.until, q.known, min(left, CSV_PAGE),
                            cursor)
        page = await asyncio.to_thread(store.query, page_q)
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        if first:
            w.writerow(wire.csv_header("pr+event_id"))
            first = False
        for ev in page.events:
            results = ev.data.get("results") or []
            if results:
                w.writerow(wire.csv_row(ev.data, results[0], "pr+event_id"))
        await resp.write(buf.getvalue().encode())
        left -= len(page.events)
        cursor = page.next
        if cursor is None:
            break
    await resp.write_eof()
    return resp


# -- known plates ----------------------------------------------------------------------------
async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "Expected a JSON object body.") from None
    if not isinstance(body, dict):
        raise ApiError(400, "Expected a JSON object body.")
    for k, v in body.items():
        if v is not None and not isinstance(v, str):
            raise ApiError(400, f"{k}: expected a string")
    return body


def _known_call(fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
    try:
        return fn(*args, **kw)
    except KnownPlatesError as exc:
        raise ApiError(exc.status, str(exc)) from None


async def known_list(request: web.Request) -> web.Response:
    known = _known(request)
    name = request.query.get("list") or None
    return web.json_response({"lists": known.lists(),
                              "plates": [e.to_json() for e in known.entries(name)]})


async def known_add(request: web.Request) -> web.Response:
    known = _known(request)
    body = await _json_body(request)
    for k in ("list", "plate"):
        if not body.get(k):
            raise ApiError(400, f"{k}: required")
    e = await asyncio.to_thread(_known_call, known.add, body["list"], body["plate"],
                                body.get("name") or "", body.get("note") or "")
    return web.json_response(e.to_json(), status=201)


async def known_update(request: web.Request) -> web.Response:
    known = _known(request)
    body = await _json_body(request)
    e = await asyncio.to_thread(
        _known_call, known.update, request.match_info["list"], request.match_info["plate"],
        plate_new=body.get("plate") or None, name=body.get("name"), note=body.get("note"),
        list_new=body.get("list") or None)
    return web.json_response(e.to_json())


async def known_delete(request: web.Request) -> web.Response:
    known = _known(request)
    await asyncio.to_thread(_known_call, known.delete, request.match_info["list"],
                            request.match_info["plate"])
    return web.Response(status=204)


async def known_export(request: web.Request) -> web.Response:
    known = _known(request)
    name = request.query.get("list") or None
    fname = f"known-plates-{name}.csv" if name else "known-plates.csv"
    return web.Response(text=known.export_csv(name), content_type="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{fname}"'})


async def known_import(request: web.Request) -> web.Response:
    known = _known(request)
    name = request.query.get("list")
    if not name:
        return web.json_response({"detail": "list: required (the list to import into)",
                                  "param": "list"}, status=400)
    replace = (request.query.get("replace") or "").lower() in ("1", "true", "yes")
    source = "upload.csv"
    if request.content_type.startswith("multipart/"):
        text = None
        reader = await request.multipart()
        async for part in reader:
            if getattr(part, "name", None) == "file":
                source = part.filename or source
                raw = await part.read(decode=True)
                if len(raw) > MAX_CSV_UPLOAD:
                    raise ApiError(413, "CSV file too large.")
                text = raw.decode("utf-8-sig", errors="replace")
        if text is None:
            raise ApiError(400, "file: expected a multipart field 'file' with the CSV")
    else:
        raw = await request.read()
        if len(raw) > MAX_CSV_UPLOAD:
            raise ApiError(413, "CSV file too large.")
        text = raw.decode("utf-8-sig", errors="replace")
    n = await asyncio.to_thread(_known_call, known.import_csv, name, text, source_name=source,
                                replace=replace)
    return web.json_response({"imported": n, "list": name})


async def outputs(request: web.Request) -> web.Response:
    _authorize(request)
    provider = request.app.get(OUTPUTS)
    body = await asyncio.to_thread(provider) if provider is not None else {}
    return web.json_response({"outputs": body}, dumps=lambda o: json.dumps(o, default=str))


def api_routes() -> list[web.AbstractRouteDef]:
    return [
        web.get("/api/v1/events", list_events),
        web.get("/api/v1/events.csv", events_csv),
        web.get("/api/v1/events/{event_id}", get_event),
        web.get("/api/v1/events/{event_id}/{kind:vehicle|plate}.jpg", event_image),
        web.get("/api/v1/known-plates", known_list),
        web.post("/api/v1/known-plates", known_add),
        web.get("/api/v1/known-plates.csv", known_export),
        web.post("/api/v1/known-plates.csv", known_import),
        web.put("/api/v1/known-plates/{list}/{plate}", known_update),
        web.delete("/api/v1/known-plates/{list}/{plate}", known_delete),
        web.get("/api/v1/outputs", outputs),
    ]
