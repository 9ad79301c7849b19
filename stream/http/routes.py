"""Request handlers: the Snapshot API (``/v1/plate-reader/``, ``/info/``, ``/v1/statistics/``),
a health check, ``/status/`` and ``/metrics``."""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import HttpVersion11, hdrs, web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from engine import EngineConfigError, Recognition, __version__
from engine.errors import BackendUnavailable
from stream.engine_worker import EngineBusy, EngineWorker
from stream.http import metrics
from stream.http.errors import ApiError, error_response
from stream.http.parsing import Limits, decode_upload, make_filename, parse_params, read_form
from stream.http.ratelimit import RateLimiter
from stream.http.settings import ServerSettings
from stream.http.usage import MAX_CALLS, UsageStore
from stream.http.webhooks import SnapshotWebhooks

__all__ = ["ServerState", "STATE", "routes"]

log = logging.getLogger(__name__)

BODY_TIMEOUT_S = 60.0    # a client that stops sending mid-body gets 408, not a stuck handler
INFER_TIMEOUT_S = 120.0


@dataclass(eq=False)
class ServerState:
    """Everything the handlers share; only the event loop mutates the counters."""

    worker: EngineWorker
    settings: ServerSettings
    usage: UsageStore
    webhooks: SnapshotWebhooks
    limiter: RateLimiter | None
    decode_pool: concurrent.futures.ThreadPoolExecutor
    status_provider: Callable[[], dict] | None = None
    limits: Limits = field(init=False)
    max_in_flight: int = field(init=False)
    in_flight: int = 0
    started: float = field(default_factory=time.time)
    background: set[asyncio.Future[Any]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.limits = Limits(self.settings.max_upload_bytes)
        # Requests read, decoded or queued at once: with the engine queue bounded too, memory
        # stays bounded under any load; extra requests get 429 before their body is read.
        self.max_in_flight = self.settings.queue_size + 2 * self.worker.max_batch

    def spawn(self, fut: asyncio.Future[Any]) -> None:
        self.background.add(fut)
        fut.add_done_callback(self._background_done)

    def _background_done(self, fut: asyncio.Future[Any]) -> None:
        self.background.discard(fut)
        if not fut.cancelled() and fut.exception() is not None:
            log.error("http: spooling a webhook failed: %s", fut.exception())


STATE = web.AppKey("state", ServerState)


def _client_key(request: web.Request, st: ServerState) -> str:
    """Check ``Authorization: Token X`` (403) and return the rate-limit key."""
    header = request.headers.get(hdrs.AUTHORIZATION, "")
    scheme, _, value = header.strip().partition(" ")
    token = value.strip() if scheme.lower() in ("token", "bearer") else ""
    expected = st.settings.token
    if expected is not None:
        if not header:
            raise ApiError(403, "Authentication credentials were not provided.")
        if not hmac.compare_digest(token.encode("utf-8", "replace"), expected.encode()):
            raise ApiError(403, "Invalid token.")
    return f"token:{token}" if token else f"ip:{request.remote}"


async def _expect_continue(request: web.Request) -> web.StreamResponse | None:
    """``Expect: 100-continue`` (curl sends it for uploads over 1 MiB): refuse a bad token or
    an oversized body before the client sends it, else let it go on."""
    if request.version != HttpVersion11:
        return None
    expect = request.headers.get(hdrs.EXPECT, "")
    if expect.lower() != "100-continue":
        return error_response(417, f"Unknown Expect: {expect:.50}")
    st = request.app[STATE]
    try:
        _client_key(request, st)
        if request.content_length is not None and request.content_length > st.limits.body:
            raise ApiError(413, "Request body too large.")
    except ApiError as exc:
        return error_response(exc.status, exc.detail, exc.headers)
    await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    request.writer.output_size = 0  # as aiohttp's default handler: the body has not started
    return None


async def plate_reader(request: web.Request) -> web.Response:
    st = request.app[STATE]
    key = _client_key(request, st)
    if st.limiter is not None and (wait := st.limiter.acquire(key)) > 0:
        raise ApiError.throttled("Request was throttled.", wait)
    if st.in_flight >= st.max_in_flight:
        raise ApiError.throttled("Server busy: too many requests in progress.", 1.0)
    st.in_flight += 1
    metrics.IN_FLIGHT.inc()
    t0 = time.perf_counter()
    try:
        return await _recognize(request, st)
    finally:
        st.in_flight -= 1
        metrics.IN_FLIGHT.dec()
        metrics.LATENCY.observe(time.perf_counter() - t0)


async def _recognize(request: web.Request, st: ServerState) -> web.Response:
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(BODY_TIMEOUT_S):
            form = await read_form(request, st.limits)
    except TimeoutError:
        raise ApiError(408, "Timed out reading the request body.") from None
    params = parse_params(form)
    image, name = await loop.run_in_executor(st.decode_pool, decode_upload, form, st.limits)
    del form
    try:
        cf = st.worker.submit(image, params.regions, params.mmc, params.config)
    except EngineBusy:
        raise ApiError.throttled("Inference queue is full.", 1.0) from None
    except EngineConfigError as exc:
        raise ApiError(400, str(exc)) from None
    del image
    rec = await _result(cf)
    calls, _ = st.usage.record()
    metrics.LOOKUPS.inc()
    rec = rec.replace(
        filename=make_filename(name), camera_id=params.camera_id, timestamp=params.timestamp,
        extra={**rec.extra, "usage": {"calls": calls, "max_calls": MAX_CALLS}},
    )
    body = rec.to_dict()
    # spooled off the loop (webhooks, event store); the response does not wait for it
    if st.webhooks.targets or st.webhooks.store is not None:
        st.spawn(loop.run_in_executor(None, st.webhooks.enqueue, body))
    return web.json_response(body, status=201)


async def _result(cf: concurrent.futures.Future[Recognition]) -> Recognition:
    try:
        return await asyncio.wait_for(asyncio.wrap_future(cf), INFER_TIMEOUT_S)
    except TimeoutError:
        cf.cancel()
        raise ApiError(503, "Inference timed out.") from None
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if cf.cancelled() and task is not None and not task.cancelling():
            raise ApiError(503, "Server is shutting down.") from None
        raise
    except BackendUnavailable:  # the inference server is down: try again later
        raise ApiError(503, "Inference server unavailable.", headers={"Retry-After": "5"}) from None
    except Exception as exc:  # noqa: BLE001 - the engine's failure, logged by the worker
        raise ApiError(500, f"Inference failed: {type(exc).__name__}.") from None


def _license_key(st: ServerState) -> str:
    # Never the token itself: a fingerprint that lets an operator tell deployments apart.
    token = st.settings.token
    return "open" if token is None else "sha256:" + hashlib.sha256(token.encode()).hexdigest()[:8]


async def info(request: web.Request) -> web.Response:
    st = request.app[STATE]
    _client_key(request, st)
    webhooks = await asyncio.to_thread(st.webhooks.info)
    stats = st.usage.statistics()
    return web.json_response({
        "version": __version__,
        "license_key": _license_key(st),
        "total_calls": stats["total_calls"],
        "usage": {"calls": stats["usage"]["calls"], "max_calls": MAX_CALLS},
        "webhooks": webhooks,
        "mmc": st.worker.recognizer.capabilities(),
    })


async def statistics(request: web.Request) -> web.Response:
    st = request.app[STATE]
    _client_key(request, st)
    return web.json_response(st.usage.statistics())


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "version": __version__})


def _status_body(st: ServerState) -> dict[str, Any]:
    provided = dict(st.status_provider()) if st.status_provider is not None else {}
    if "engine" not in provided:  # `run`'s status already has it: don't ask twice
        provided["engine"] = st.worker.stats()
    provided["http"] = {
        "uptime_s": round(time.time() - st.started, 1),
        "in_flight": st.in_flight,
        "max_in_flight": st.max_in_flight,
        "usage": st.usage.statistics(),
        "webhooks": st.webhooks.info(),
    }
    return provided


async def status(request: web.Request) -> web.Response:
    st = request.app[STATE]
    _client_key(request, st)
    body = await asyncio.to_thread(_status_body, st)
    return web.json_response(body, dumps=_dumps)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, default=str)  # a provider may report paths, datetimes...


async def prometheus(request: web.Request) -> web.Response:
    body = await asyncio.to_thread(generate_latest, REGISTRY)
    return web.Response(body=body, headers={hdrs.CONTENT_TYPE: CONTENT_TYPE_LATEST})


def routes() -> list[web.AbstractRouteDef]:
    """Every endpoint with and without its trailing slash: clients differ, and a redirect
    would turn a POST into a GET in many of them."""
    table: list[web.AbstractRouteDef] = [web.get("/", health)]
    for path, add, handler in (
        ("/v1/plate-reader", web.post, plate_reader),
        ("/info", web.get, info),
        ("/v1/statistics", web.get, statistics),
        ("/status", web.get, status),
        ("/metrics", web.get, prometheus),
    ):
        kw = {"expect_handler": _expect_continue} if handler is plate_reader else {}
        table += [add(path, handler, **kw), add(path + "/", handler, **kw)]
    return table
