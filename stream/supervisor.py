"""The one owner of a deployment's lifecycle (``platestream run``): one main loop, one order.

Start: server socket bound (before the models load, so a taken port fails at once) -> engine
-> (the pipeline's) delivery -> analysis -> sources -> server listening.
Stop (Ctrl-C / SIGTERM, or every video file has ended): the server stops accepting requests ->
sources -> analysis (open tracks are spooled) -> delivery drain (up to drain_timeout) -> the
server's own outputs (Snapshot webhooks, usage counter) -> engine last (analysis and in-flight
requests use it).
Each phase is logged as ``start: ...`` / ``stop: ...``.

With a ``server:`` the pipeline runs inside the aiohttp app's cleanup context (started when the
app starts, stopped when it is cleaned up); without one the same loop runs the pipeline
directly. A run whose cameras are all files ends when they have ended, server or not.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import threading
from collections.abc import AsyncIterator

from aiohttp import web

from stream.config import ServerSettings
from stream.engine_worker import EngineWorker
from stream.pipeline import Pipeline

__all__ = ["Supervisor"]

log = logging.getLogger(__name__)

POLL_S = 0.5  # how often the loop looks whether every video has ended


class Supervisor:
    """Runs ``pipeline`` on ``worker``, with the HTTP API when ``server`` is given.

    Args:
        drain_timeout: on a clean stop (every video ended, Ctrl-C or SIGTERM), wait up to this
            long for the outputs to deliver before stopping (what is left stays in the spool).
        sock: the server's listening socket from ``bind_server`` (else bound at start).
    """

    def __init__(self, pipeline: Pipeline, worker: EngineWorker, *,
                 server: ServerSettings | None = None, drain_timeout: float = 15.0,
                 sock: socket.socket | None = None) -> None:
        self.pipeline = pipeline
        self.worker = worker
        self.server = server
        self.drain_timeout = drain_timeout
        self.sock = sock  # the server's socket, bound before the models load (bind_server)

    def run(self) -> None:
        """Blocks until a signal or the end of every file.

        Raises:
            OSError: the server's address cannot be bound (after a clean stop).
        """
        asyncio.run(self._main())

    async def _main(self) -> None:
        stop = asyncio.Event()
        if threading.current_thread() is threading.main_thread():
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
        self.worker.start()
        log.info("start: engine")
        runner = None
        try:
            if self.server is not None:
                runner = await self._start_server()
            else:
                await asyncio.to_thread(self.pipeline.start)
            while not stop.is_set():  # the one main loop
                try:
                    await asyncio.wait_for(stop.wait(), POLL_S)
                except TimeoutError:
                    pass
                if self.pipeline.done():
                    log.info("run: every video has ended")
                    break
        finally:
            if runner is not None:
                await runner.cleanup()  # stops listening, then the pipeline, then the app
                log.info("stop: server")
            else:
                await asyncio.to_thread(self._stop_pipeline)
            await asyncio.to_thread(self.worker.stop)
            log.info("stop: engine")

    def _stop_pipeline(self) -> None:
        # a clean stop (end of files, Ctrl-C, SIGTERM): open tracks become events and the
        # outputs get up to drain_timeout to deliver them; what is left stays in the spool
        self.pipeline.stop(drain_timeout=self.drain_timeout)

    async def _pipeline_ctx(self, app: web.Application) -> AsyncIterator[None]:
        await asyncio.to_thread(self.pipeline.start)
        log.info("start: pipeline (delivery, analysis, sources)")
        yield
        await asyncio.to_thread(self._stop_pipeline)

    async def _start_server(self) -> web.AppRunner:
        from stream.http.server import create_app

        assert self.server is not None
        await asyncio.to_thread(self.pipeline.open)  # the app serves its store and known plates
        p = self.pipeline
        app = create_app(self.worker, self.server, status_provider=p.status, store=p.store,
                         known=p.known, pipeline=p)
        app.cleanup_ctx.append(self._pipeline_ctx)  # after the app's own: stopped before it
        runner = web.AppRunner(app, shutdown_timeout=10.0)
        await runner.setup()
        try:
            if self.sock is not None:
                await web.SockSite(runner, self.sock).start()
            else:
                await web.TCPSite(runner, self.server.host, self.server.port).start()
        except OSError:
            await runner.cleanup()
            raise
        log.info("start: server on %s:%d", self.server.host, self.server.port)
        return runner


def bind_server(settings: ServerSettings) -> socket.socket:
    """Bind and listen on the server's address before anything slow (models) is loaded, so a
    taken port is reported at once.

    Raises:
        OSError: the address cannot be bound.
    """
    family, kind, proto, _, addr = socket.getaddrinfo(
        settings.host or None, settings.port, type=socket.SOCK_STREAM,
        flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock
