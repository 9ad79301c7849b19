"""Live updates for the console: one Server-Sent Events stream per open page.

``status`` messages (cameras and outputs, once a second) come from the server's status
provider; ``plate`` messages come from the event store's listener (called on a delivery
thread, hopped onto the loop). Each client has a bounded queue: a client too slow to read
loses plate messages (it still sees them on the events page), never the server's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

import cv2
import numpy as np
from aiohttp import web

__all__ = ["LiveHub", "encode_thumbnail"]

log = logging.getLogger(__name__)

STATUS_EVERY_S = 1.0
KEEPALIVE_S = 15.0
CLIENT_QUEUE = 100
MAX_CLIENTS = 32
THUMB_WIDTH = 480
THUMB_CACHE_S = 0.5

_CLOSE = object()


def encode_thumbnail(image: np.ndarray, width: int = THUMB_WIDTH) -> bytes | None:
    h, w = image.shape[:2]
    if w > width:
        image = cv2.resize(image, (width, max(1, round(h * width / w))),
                           interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 75])
    return buf.tobytes() if ok else None


class LiveHub:
    """Fans new events out to the connected SSE clients."""

    def __init__(self) -> None:
        self._clients: set[asyncio.Queue[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thumbs: dict[str, tuple[float, bytes | None]] = {}
        self.closed = False

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def on_event(self, stored: Any) -> None:  # a StoredEvent, on a delivery thread
        loop = self._loop
        if loop is None or self.closed:
            return
        try:
            body = stored.to_json()
        except Exception:  # noqa: BLE001 - a bad row must not break the store's put
            log.exception("console: event %s could not be shown", getattr(stored, "event_id", "?"))
            return
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is listening
            loop.call_soon_threadsafe(self.publish, "plate", body)

    def publish(self, kind: str, body: Any) -> None:
        for q in list(self._clients):
            if q.full():
                continue
            q.put_nowait((kind, body))

    def close(self) -> None:
        """Ends every stream (server shutdown), so the shutdown does not wait for them."""
        self.closed = True
        for q in list(self._clients):
            with contextlib.suppress(asyncio.QueueFull):
                while q.full():
                    q.get_nowait()
                q.put_nowait(_CLOSE)

    async def thumbnail(self, pipeline: Any, camera: str) -> bytes | None:
        """A small JPEG of the camera's newest analysed frame; encoded at most twice a second."""
        now = time.monotonic()
        cached = self._thumbs.get(camera)
        if cached is not None and now - cached[0] < THUMB_CACHE_S:
            return cached[1]
        frame = pipeline.last_frame(camera) if pipeline is not None else None
        jpeg = None if frame is None else await asyncio.to_thread(encode_thumbnail, frame)
        self._thumbs[camera] = (now, jpeg)
        return jpeg

    async def stream(self, request: web.Request, status: Any) -> web.StreamResponse:
        """The SSE response: ``status`` every second, ``plate`` on each new event."""
        if len(self._clients) >= MAX_CLIENTS:
            return web.json_response({"detail": "Too many live views open."}, status=503)
        resp = web.StreamResponse(headers={
            "Content-Type": "text/event-stream", "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        })
        await resp.prepare(request)
        q: asyncio.Queue[Any] = asyncio.Queue(CLIENT_QUEUE)
        self._clients.add(q)
        try:
            await resp.write(b"retry: 2000\n\n")
            next_status = 0.0
            last_write = time.monotonic()
            while not self.closed:
                now = time.monotonic()
                if now >= next_status:
                    body = await asyncio.to_thread(status)
                    await resp.write(_sse("status", body))
                    next_status, last_write = now + STATUS_EVERY_S, now
                try:
                    item = await asyncio.wait_for(q.get(), max(0.05, next_status - now))
                except TimeoutError:
                    if time.monotonic() - last_write > KEEPALIVE_S:
                        await resp.write(b": keepalive\n\n")
                    continue
                if item is _CLOSE:
                    break
                await resp.write(_sse(*item))
                last_write = time.monotonic()
        except ConnectionResetError:
            pass  # the page was closed
        finally:
            self._clients.discard(q)
        return resp


def _sse(kind: str, body: Any) -> bytes:
    data = json.dumps(body, default=str, separators=(",", ":"))
    return f"event: {kind}\ndata: {data}\n\n".encode()
