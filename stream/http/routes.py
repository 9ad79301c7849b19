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
from stream import wire
from stream.config import ServerSettings
from stream.engine_worker import EngineBusy, EngineWorker
from stream.http import metrics
from stream.http.admission import DECODE_FACTOR, ByteBudget, PixelBudget, Throughput
from stream.http.cors import preflight
from stream.http.errors import ApiError, error_response
from stream.http.fetch import UrlPolicy, fetch_image
from stream.http.parsing import (
    Limits,
    RawForm,
    decode_upload,
    file_name,
    image_size,
    make_filename,
    parse_params,
    read_form,
    too_large,
    upload_bytes,
)
from stream.http.ratelimit import RateLimiter
from stream.http.usage import MAX_CALLS, UsageStore
from stream.http.webhooks import SnapshotWebhooks

__all__ = ["ServerState", "STATE", "routes"]

log = logging.getLogger(__name__)

INFER_TIMEOUT_S = 120.0
# Requests receiving their body at once. They hold no engine slot, only the bytes they sent
# (ByteBudget) and a connection, each for at most server.body_timeout.
MAX_RECEIVING = 512
IGNORED_CONFIG_HEADER = "X-Platestream-Ignored-Config"
BODY_BUDGET_MIN = 32 * 1048576
PIXEL_WAIT_S = 5.0  # an image waits this long in line for the pixel budget, then 429


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
    receiving: int = 0
    started: float = field(default_factory=time.time)
    background: set[asyncio.Future[Any]] = field(default_factory=set)
    bodies: ByteBudget = field(init=False)
    pixels: PixelBudget = field(init=False)
    throughput: Throughput = field(default_factory=Throughput)
    url_policy: UrlPolicy = field(init=False)
    ignored_logged: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.limits = Limits(self.settings.max_upload_bytes)
        # Requests decoded, queued or running at once (bodies already received): with the
        # engine queue bounded too, memory stays bounded under any load.
        self.max_in_flight = self.settings.queue_size + 2 * self.worker.max_batch
        # Bodies in memory (and their transient copies: base64 text, decoded bytes): room
        # for three largest bodies or 32 MiB, whichever is more; measured with
        # scripts/hostile_load.py, which keeps the server under 600 MB with it.
        self.bodies = ByteBudget(max(3 * self.limits.body, BODY_BUDGET_MIN))
        # Images decoded or waiting: room for one largest image being decoded (or several
        # smaller ones), so decoded pixels (3 bytes each) stay within ~150 MB by default.
        per = self.settings.max_pixels
        self.pixels = PixelBudget(per, DECODE_FACTOR * per)
        self.url_policy = UrlPolicy(self.settings.allow_url_hosts)

    def retry_after(self) -> float:
        """Seconds until the backlog (requests in progress) should have cleared."""
        return self.throughput.retry_after(self.in_flight)

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
            raise too_large(st.limits)
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
    if st.receiving >= MAX_RECEIVING:
        raise ApiError.throttled("Server busy: too many uploads in progress.", st.retry_after())
    t0 = time.perf_counter()
    held = [0]  # body bytes charged to st.bodies by this request

    def charge(n: int) -> None:
        st.bodies.take(n)
        held[0] += n

    st.receiving += 1
    try:
        try:
            async with asyncio.timeout(st.settings.body_timeout):
                form = await read_form(request, st.limits, charge)
        except TimeoutError:
            raise ApiError(408, f"Timed out reading the request body (the limit is "
                                f"{st.settings.body_timeout:g} s).") from None
        finally:
            st.receiving -= 1
        params = parse_params(form)
        if st.in_flight >= st.max_in_flight:
            raise ApiError.throttled("Server busy: too many requests in progress.",
                                     st.retry_after())
        st.in_flight += 1
        metrics.IN_FLIGHT.inc()
        try:
            return await _recognize(request, st, form, params)
        finally:
            st.in_flight -= 1
            metrics.IN_FLIGHT.dec()
            metrics.LATENCY.observe(time.perf_counter() - t0)
    finally:
        st.bodies.give(held[0])


async def _image_bytes(st: ServerState, form: RawForm) -> tuple[bytes, str]:
    url = form.last("upload_url")
    if form.upload is None and url not in (None, ""):
        data, name = await fetch_image(url, st.url_policy, st.limits.upload)
        return data, file_name(name, data)
    if len(form.upload or "") < 1 << 20:
        return upload_bytes(form, st.limits)
    loop = asyncio.get_running_loop()  # a large base64 text: decode it off the loop
    return await loop.run_in_executor(st.decode_pool, upload_bytes, form, st.limits)


async def _recognize(request: web.Request, st: ServerState, form: RawForm,
                     params: Any) -> web.Response:
    loop = asyncio.get_running_loop()
    data, name = await _image_bytes(st, form)
    form.upload = None  # the bytes below are all that is kept
    width, height = image_size(data, st.settings.max_pixels)
    st.pixels.check_size(width, height)
    pixels = width * height
    charged = pixels * DECODE_FACTOR
    await st.pixels.acquire(charged, PIXEL_WAIT_S, st.retry_after())
    try:
        image = await loop.run_in_executor(st.decode_pool, decode_upload, data)
        if not st.webhooks.wants_image:
            del data
        st.pixels.give(charged - pixels)
        charged = pixels
        try:
            cf = st.worker.submit(image, params.regions, params.mmc, params.config)
        except EngineBusy:
            raise ApiError.throttled("Inference queue is full.", st.retry_after()) from None
        except EngineConfigError as exc:
            raise ApiError(400, str(exc)) from None
        del image
        rec = await _result(cf)
    finally:
        st.pixels.give(charged)
    st.throughput.record()
    data = data if st.webhooks.wants_image else None
    calls, _ = st.usage.record()
    metrics.LOOKUPS.inc()
    rec = rec.replace(
        filename=make_filename(name), camera_id=params.camera_id, timestamp=params.timestamp)
    body = wire.snapshot_response(rec, usage=(calls, MAX_CALLS),
                                  detection_mode=params.config.detection_mode, mmc=params.mmc)
    # spooled off the loop (webhooks, event store); the response does not wait for it
    if st.webhooks.targets or st.webhooks.store is not None:
        st.spawn(loop.run_in_executor(None, st.webhooks.enqueue, body, data, name))
    headers = {}
    if params.ignored_config:
        headers[IGNORED_CONFIG_HEADER] = ", ".join(k[:64] for k in params.ignored_config[:16])
        _log_ignored(st, params.ignored_config)
    return web.json_response(body, status=201, headers=headers)


def _log_ignored(st: ServerState, keys: tuple[str, ...]) -> None:
    """Each unknown config key is logged once per server run (clients repeat them)."""
    for key in keys:
        if key not in st.ignored_logged and len(st.ignored_logged) < 256:
            st.ignored_logged.add(key)
            log.info("http: ignoring config key %r, unknown to this server (listed in the %s "
                     "response header)", key[:64], IGNORED_CONFIG_HEADER)


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
        "lifetime_calls": st.usage.lifetime(),
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
    st = request.app[STATE]
    if not st.settings.metrics_public:
        _client_key(request, st)
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
        methods = "POST" if handler is plate_reader else "GET"
        table += [web.options(p, preflight(methods)) for p in (path, path + "/")]
    return table
