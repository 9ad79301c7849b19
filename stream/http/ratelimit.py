"""Per-key token buckets: ``rate`` lookups per second with a one-second burst."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["RateLimiter"]


class RateLimiter:
    """Token bucket per key (a token, or the client address when no token is used).

    Only the event loop calls it, so it needs no lock. At most ``max_keys`` buckets are kept;
    the least recently used is forgotten (it would be full again by then anyway).
    """

    def __init__(
        self, rate: float, *, burst: float | None = None, max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate_limit: must be > 0 lookups/s, got {rate}")
        self.rate = rate
        self.burst = max(1.0, rate if burst is None else burst)
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, time

    def acquire(self, key: str) -> float:
        """Take one token: 0.0 when allowed, else the seconds until one is available."""
        now = self._clock()
        tokens, last = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return wait
