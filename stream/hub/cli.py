"""``platestream hub CONFIG.yaml``: the fleet's event store, query API and nodes, fed by MQTT.

HTTP (the same API as a node's, over every node's events):
  ``GET /api/v1/events?node=...&plate=...`` (and .csv, /{id}, images), ``/api/v1/known-plates``
  ``GET /api/v1/nodes``   ``{"nodes": [{node_id, online, state, last_seen, cameras, ...}]}``
  ``GET /status/``        the broker link, counters, nodes' states, the store
  ``GET /``               health check
  ``/ui/``                the web console (live events, events, known plates, health) and
                          ``/ui/nodes``: every node, online/offline, with its cameras
Token: ``Authorization: Token X`` on every /api and /status route when ``server.token`` is set;
the console logs in with the same token (a session cookie that also opens /api).
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import json
import logging
import signal
import sys

from aiohttp import hdrs, web

__all__ = ["register", "create_hub_app"]

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("hub", help="one event store, API and nodes view for many edge "
                              "nodes, fed over MQTT (see docs/deploy.md)")
    p.add_argument("config", metavar="CONFIG.yaml")
    p.set_defaults(func=_cmd_hub)


def _token_check(token: str | None):
    from stream.http.errors import ApiError

    def check(request: web.Request) -> bool:
        if token is None:
            return True
        header = request.headers.get(hdrs.AUTHORIZATION, "")
        scheme, _, value = header.strip().partition(" ")
        given = value.strip() if scheme.lower() in ("token", "bearer") else ""
        if not header:
            raise ApiError(403, "Authentication credentials were not provided.")
        if not hmac.compare_digest(given.encode("utf-8", "replace"), token.encode()):
            raise ApiError(403, "Invalid token.")
        return True

    return check


def create_hub_app(hub, known, token: str | None) -> web.Application:  # noqa: ANN001
    from stream.console import setup_console
    from stream.console.views import CONSOLE
    from stream.http.api_events import API_AUTH, KNOWN, OUTPUTS, STORE, api_routes
    from stream.http.errors import error_middleware

    app = web.Application(middlewares=[error_middleware])
    app[STORE] = hub.store
    app[KNOWN] = known
    app[OUTPUTS] = lambda: {}
    # The web console (/ui/) with a Nodes page; its login session also opens the API.
    setup_console(app, token=token, nodes=hub.nodes, link=hub.link)
    sessions = app[CONSOLE].sessions
    token_check = _token_check(token)

    def check(request: web.Request) -> bool:
        if sessions is not None and sessions.allows(request):
            return True
        return token_check(request)  # raises 403 without a valid token

    app[API_AUTH] = check

    def dumps(o: object) -> str:
        return json.dumps(o, default=str)

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "role": "hub"})

    async def nodes(request: web.Request) -> web.Response:
        check(request)
        return web.json_response({"nodes": hub.nodes()}, dumps=dumps)

    async def status(request: web.Request) -> web.Response:
        check(request)
        body = await asyncio.to_thread(hub.status)
        return web.json_response(body, dumps=dumps)

    app.add_routes([web.get("/", health), web.get("/api/v1/nodes", nodes),
                    web.get("/status/", status), web.get("/status", status), *api_routes()])
    return app


def _cmd_hub(args: argparse.Namespace) -> int:
    from stream.hub.config import load_hub_config
    from stream.hub.service import Hub
    from stream.known_plates import KnownPlates, KnownPlatesError
    from stream.store import StoreError, open_store

    cfg = load_hub_config(args.config)
    try:
        store = open_store(cfg.store, cfg.state_dir)
    except StoreError as exc:
        print(f"platestream: hub: {exc}", file=sys.stderr)
        return 1
    try:
        known = KnownPlates.from_config(cfg.known_plates, cfg.state_dir, backend=store)
    except KnownPlatesError as exc:
        store.close()
        print(f"platestream: hub: {exc}", file=sys.stderr)
        return 2
    hub = Hub(cfg, store)
    hub.start()
    hub.set_known(known)
    try:
        asyncio.run(_serve(hub, known, cfg))
    except OSError as exc:
        print(f"platestream: hub: cannot listen on {cfg.server.host}:{cfg.server.port}: "
              f"{exc.strerror or exc}", file=sys.stderr)
        return 1
    finally:
        hub.stop()
        store.close()
    return 0


async def _serve(hub, known, cfg) -> None:  # noqa: ANN001
    app = create_hub_app(hub, known, cfg.server.token)
    runner = web.AppRunner(app, shutdown_timeout=5.0, access_log=None)
    await runner.setup()
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    try:
        await web.TCPSite(runner, cfg.server.host, cfg.server.port).start()
        log.info("hub: console on http://%s:%d/ui/, API on /api/v1/events, nodes on "
                 "/api/v1/nodes", cfg.server.host, cfg.server.port)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, done.set)
        await done.wait()
    finally:
        await runner.cleanup()
