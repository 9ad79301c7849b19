"""Suppress repeats: the same plate on the same camera within ``memory_decay`` seconds."""

from __future__ import annotations

from rapidfuzz import fuzz

__all__ = ["RecentPlates"]


class RecentPlates:
    """Recently reported plates of one camera, matched fuzzily (a misread char is the same car).

    Timestamps are arguments (the camera's clock), so this is pure and testable.
    A repeat refreshes its entry: a parked car that keeps being seen stays one event.
    """

    def __init__(self, memory_decay: float, min_ratio: float = 80.0) -> None:
        if memory_decay < 0 or not 0 <= min_ratio <= 100:
            raise ValueError(
                f"RecentPlates: memory_decay >= 0 and 0 <= min_ratio <= 100, "
                f"got {memory_decay}, {min_ratio}"
            )
        self.memory_decay = memory_decay
        self.min_ratio = min_ratio
        self._seen: dict[str, float] = {}

    def is_repeat(self, plate: str, ts: float) -> bool:
        """True when ``plate`` was seen within memory_decay; records it either way."""
        self._seen = {p: t for p, t in self._seen.items() if ts - t <= self.memory_decay}
        repeat = None
        for p in self._seen:
            if p == plate or fuzz.ratio(p, plate) >= self.min_ratio:
                repeat = p
                break
        if repeat is not None:
            self._seen[repeat] = ts
            return True
        self._seen[plate] = ts
        return False
