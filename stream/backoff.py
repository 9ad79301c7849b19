"""Capped exponential backoff: camera reconnects and delivery retries."""

from __future__ import annotations

__all__ = ["Backoff"]


class Backoff:
    """``next()`` gives initial, 2*initial, ... up to ``maximum``; ``reset()`` after a success."""

    def __init__(self, initial: float = 0.5, maximum: float = 30.0) -> None:
        if initial <= 0 or maximum < initial:
            raise ValueError(f"Backoff: need 0 < initial <= maximum, got {initial}, {maximum}")
        self.initial = initial
        self.maximum = maximum
        self._n = 0

    def next(self) -> float:
        delay = min(self.maximum, self.initial * 2 ** min(self._n, 30))
        self._n += 1
        return delay

    def reset(self) -> None:
        self._n = 0
