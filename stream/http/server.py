"""The app factory and the blocking entry point of the Snapshot-compatible HTTP server."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import signal
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from stream.config import ServerSettings
from stream.console import setup_console
from stream.engine_worker import EngineWorker
from stream.http import api_events, metrics
from stream.http.cors import CORS_ORIGINS, cors_middleware
from stream.http.errors import error_middleware
from stream.http.protocol import JsonErrorRunner
from stream.http.ratelimit import RateLimiter
from stream.http.routes import STATE, ServerState, routes
from stream.http.usage import UsageStore
from stream.http.webhooks import SnapshotWebhooks

__all__ = ["create_app", "run_server"]

log = logging.getLogger(__name__)

USAGE_FILE = "usage.json"
SPOOL_FILE = "snapshot_webhooks.sqlite"
FLUSH_EVERY_S = 1.0
DECODE_THREADS = 2


@web.middleware
async def _metrics_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    response = await handler(request)
    route = request.match_info.route.resource
    name = route.canonical.rstrip("/") or "/" if route is not None else "unmatched"
    metrics.REQUESTS.labels(route=name, code=str(response.status)).inc()
    return response


def create_app(
    worker: EngineWorker,
    settings: ServerSettings,
    *,
    status_provider: Callable[[], dict] | None = None,
    store: object | None = None,
    known: object | None = None,
    pipeline: object | None = None,
) -> web.Application:
    """Build the aiohttp app.

    The worker is shared (cameras use it too), so its owner starts and stops it; the app
    only submits to it. Webhook delivery threads and the usage counter live and die with the
    app (a cleanup context).
    """
    data_dir = settings.data_path
    state = ServerState(
        worker=worker,
        settings=settings,
        usage=UsageStore(data_dir / USAGE_FILE),
        webhooks=SnapshotWebhooks(settings.webhook_targets, data_dir / SPOOL_FILE,
                                  store=_store_sender(store, known)),
        limiter=RateLimiter(settings.rate_limit) if settings.rate_limit else None,
        decode_pool=concurrent.futures.ThreadPoolExecutor(DECODE_THREADS, "http-decode"),
        status_provider=status_provider,
    )
    app = web.Application(
        client_max_size=state.limits.body,
        middlewares=[_metrics_middleware, cors_middleware(settings.allowed_origins),
                     error_middleware],
    )
    app[STATE] = state
    app[CORS_ORIGINS] = settings.allowed_origins
    app.add_routes(routes())
    _add_event_api(app, store, known, status_provider)
    setup_console(app, token=settings.token, pipeline=pipeline)
    app.cleanup_ctx.append(_lifecycle)
    return app


def _store_sender(store: object | None, known: object | None) -> Callable | None:
    """Snapshot results go to the event store too (through the webhooks' spool)."""
    if store is None:
        return None
    from stream.store.feed import SnapshotStoreSender

    return SnapshotStoreSender(store, known)  # type: ignore[arg-type]


def _add_event_api(app: web.Application, store: object | None, known: object | None,
                   status_provider: Callable[[], dict] | None) -> None:
    """The event store and known-plates API (``/api/v1/``); see stream.http.api_events."""
    if store is not None:
        app[api_events.STORE] = store
    if known is not None:
        app[api_events.KNOWN] = known
    if status_provider is not None:
        app[api_events.OUTPUTS] = lambda: dict(status_provider()).get("outputs", {})
    app.add_routes(api_events.api_routes())


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    st = app[STATE]
    await asyncio.to_thread(st.webhooks.start)
    flusher = asyncio.create_task(_flush_usage(st.usage), name="http:usage-flush")
    yield
    flusher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await flusher
    if st.background:  # webhook rows being spooled for answers already sent
        await asyncio.wait(list(st.background), timeout=10.0)
    await asyncio.to_thread(st.webhooks.stop, 10.0)
    await asyncio.to_thread(st.usage.flush)
    st.decode_pool.shutdown(wait=False, cancel_futures=True)


async def _flush_usage(usage: UsageStore) -> None:
    while True:
        await asyncio.sleep(FLUSH_EVERY_S)
        await asyncio.to_thread(usage.flush)


def run_server(
    worker: EngineWorker,
    settings: ServerSettings,
    *,
    status_provider: Callable[[], dict] | None = None,
    stop_event: threading.Event | None = None,
    store: object | None = None,
    known: object | None = None,
    pipeline: object | None = None,
) -> None:
    """Serve until ``stop_event`` is set, or SIGINT/SIGTERM when run in the main thread.

    Raises:
        OSError: the address cannot be bound (port in use, bad host).
    """
    asyncio.run(_serve(worker, settings, status_provider, stop_event, store, known, pipeline))


async def _serve(
    worker: EngineWorker,
    settings: ServerSettings,
    status_provider: Callable[[], dict] | None,
    stop_event: threading.Event | None,
    store: object | None = None,
    known: object | None = None,
    pipeline: object | None = None,
) -> None:
    app = create_app(worker, settings, status_provider=status_provider, store=store,
                     known=known, pipeline=pipeline)
    runner = JsonErrorRunner(app, shutdown_timeout=10.0)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    watcher = None
    try:
        site = web.TCPSite(runner, settings.host, settings.port)
        await site.start()
        log.info("http: Snapshot API on http://%s:%d/v1/plate-reader/ (token %s)",
                 settings.host, settings.port, "required" if settings.token else "not required")
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
        if stop_event is not None:
            watcher = asyncio.create_task(_watch(stop_event, stop))
        await stop.wait()
        log.info("http: stopping")
    finally:
        if watcher is not None:
            watcher.cancel()
        t0 = time.monotonic()
        await runner.cleanup()
        log.debug("http: stopped in %.1f s", time.monotonic() - t0)


async def _watch(stop_event: threading.Event, stop: asyncio.Event) -> None:
    while not stop_event.is_set():
        await asyncio.sleep(0.2)
    stop.set()
