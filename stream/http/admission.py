"""What the server lets in at once, so that no mix of requests can exhaust its memory or
hold its engine: bytes of request bodies being received, pixels of images being decoded or
waiting for inference, and the Retry-After a refused client is told.

Bodies and pixels are separate budgets on purpose: a client still sending its body holds
only the bytes it has sent, never an engine admission slot (a stalled upload cannot make
real requests wait), and an image's pixels are admitted from its header before it is
decoded (a 58 kB PNG claiming 60 Mpx never reaches the decoder unless the budget has room).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable

from stream.http.errors import ApiError

__all__ = ["ByteBudget", "PixelBudget", "Throughput", "DECODE_FACTOR"]

# A decode holds the compressed bytes, the decoder's RGB image and our BGR copy at once:
# charge an image this many times its pixels until the decode is done, then once.
DECODE_FACTOR = 2
# Requests waiting in line for pixels at most (beyond: 429 at once).
MAX_WAITERS = 64


class ByteBudget:
    """Bytes of request bodies held in memory, over every request (event loop only)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def take(self, n: int) -> None:
        """Charge ``n`` more bytes; ApiError 429 when that would pass the limit."""
        if self.used + n > self.limit:
            raise ApiError.throttled(
                f"Server busy: {self.used / 1048576:.0f} MiB of uploads are being received "
                f"(the limit is {self.limit / 1048576:.0f} MiB).", 1.0)
        self.used += n

    def give(self, n: int) -> None:
        self.used = max(0, self.used - n)


class PixelBudget:
    """Pixels of images being decoded or waiting for a result (event loop only).

    ``limit`` is at least ``per_image * DECODE_FACTOR`` so that one largest image always fits
    an otherwise idle server.
    """

    def __init__(self, per_image: int, limit: int) -> None:
        self.per_image = per_image
        self.limit = max(limit, per_image * DECODE_FACTOR)
        self.used = 0
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    def check_size(self, width: int, height: int) -> None:
        """ApiError 413 for an image over the per-image limit (read from its header)."""
        if width * height > self.per_image:
            raise ApiError(
                413, f"Image too large: {width}x{height} is {width * height / 1e6:.1f} Mpx; "
                f"the limit is {self.per_image / 1e6:.1f} Mpx (--max-pixels).")

    def take(self, n: int, retry_after: float) -> None:
        """Charge ``n`` pixels now, or ApiError 429 (someone waiting goes first)."""
        if self._waiters or self.used + n > self.limit:
            raise self._busy(retry_after)
        self.used += n

    async def acquire(self, n: int, wait_s: float, retry_after: float) -> None:
        """Charge ``n`` pixels, waiting up to ``wait_s`` in line (first come, first served, so
        a large image is not starved by a stream of small ones), else ApiError 429."""
        if not self._waiters and self.used + n <= self.limit:
            self.used += n
            return
        if len(self._waiters) >= MAX_WAITERS:
            raise self._busy(retry_after)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (n, fut)
        self._waiters.append(entry)
        try:
            await asyncio.wait_for(asyncio.shield(fut), wait_s)
        except BaseException as exc:  # timed out, or the request was cancelled
            if fut.done() and not fut.cancelled():
                if isinstance(exc, TimeoutError):
                    return  # granted just as the wait ended
                self.give(n)  # granted, but the request is gone
                raise
            fut.cancel()
            self._waiters.remove(entry)
            self._wake()  # the next in line may fit now
            if isinstance(exc, TimeoutError):
                raise self._busy(retry_after) from None
            raise

    def give(self, n: int) -> None:
        self.used = max(0, self.used - n)
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.used + self._waiters[0][0] <= self.limit:
            n, fut = self._waiters.popleft()
            if not fut.done():
                self.used += n
                fut.set_result(None)

    def _busy(self, retry_after: float) -> ApiError:
        return ApiError.throttled(
            f"Server busy: {self.used / 1e6:.0f} Mpx of images are being processed (the "
            f"limit is {self.limit / 1e6:.0f} Mpx).", retry_after)


class Throughput:
    """Recent completions per second, to tell a refused client when to come back.

    ``retry_after(backlog)`` is the backlog divided by the rate of the last ``window_s``
    seconds, clamped to 1..60 s; with no recent completions it assumes one a second.
    """

    def __init__(self, window_s: float = 30.0, clock: Callable[[], float] = time.monotonic,
                 max_events: int = 4096) -> None:
        self.window_s = window_s
        self._clock = clock
        self._done: deque[float] = deque(maxlen=max_events)

    def record(self) -> None:
        self._done.append(self._clock())

    def rate(self) -> float:
        now = self._clock()
        while self._done and now - self._done[0] > self.window_s:
            self._done.popleft()
        if len(self._done) < 2:
            return 0.0
        span = max(now - self._done[0], 1.0)
        return len(self._done) / span

    def retry_after(self, backlog: int) -> float:
        rate = self.rate() or 1.0
        return float(min(60, max(1, math.ceil((backlog + 1) / rate))))
