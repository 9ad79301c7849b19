"""The lookup counter behind ``usage`` and ``/v1/statistics/``: calls this month (reset on
the 1st, UTC) and in total, kept in a small JSON file that survives restarts."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["UsageStore", "MAX_CALLS"]

log = logging.getLogger(__name__)

# No licence caps lookups here; clients (Home Assistant) compute max_calls - calls, so this
# must be a number, and a large one.
MAX_CALLS = 1_000_000_000


class UsageStore:
    """Thread-safe counter; ``record`` is in memory, ``flush`` writes the file atomically.

    A crash loses at most the calls since the last flush (the server flushes every second).
    """

    def __init__(self, path: str | Path, *, clock: Callable[[], datetime] | None = None) -> None:
        self.path = Path(path)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()  # one writer of the file at a time
        self._dirty = False
        now = self._clock()
        self._period = (now.year, now.month)
        self._calls = 0
        self._total = 0
        self._load()

    def _load(self) -> None:
        try:
            doc = json.loads(self.path.read_text())
            period = (int(doc["year"]), int(doc["month"]))
            calls, total = int(doc["calls"]), int(doc["total_calls"])
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError) as exc:
            bad = self.path.with_suffix(".corrupt")
            log.warning("usage: %s unreadable (%s); starting from 0, old file kept as %s",
                        self.path, exc, bad)
            os.replace(self.path, bad)
            return
        self._total = total
        if period == self._period:
            self._calls = calls

    def _roll(self) -> None:
        now = self._clock()
        if (now.year, now.month) != self._period:
            self._period, self._calls, self._dirty = (now.year, now.month), 0, True

    def record(self, n: int = 1) -> tuple[int, int]:
        """Count ``n`` lookups; returns (calls this month, total calls)."""
        with self._lock:
            self._roll()
            self._calls += n
            self._total += n
            self._dirty = True
            return self._calls, self._total

    def statistics(self) -> dict[str, Any]:
        """The ``GET /v1/statistics/`` body."""
        with self._lock:
            self._roll()
            year, month = self._period
            calls = self._calls
        nxt = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
        # total_calls is the period's allowance in Plate Recognizer's docs (clients compute
        # total_calls - usage.calls as the calls left); the lifetime count is ``lifetime()``.
        return {
            "usage": {"month": month, "calls": calls, "year": year,
                      "resets_on": nxt.strftime("%Y-%m-%dT%H:%M:%SZ")},
            "total_calls": MAX_CALLS,
        }

    def lifetime(self) -> int:
        """Calls counted since the counter file was created."""
        with self._lock:
            return self._total

    def flush(self) -> None:
        """Write the file if anything changed (temp file + rename: never half written)."""
        with self._lock:
            if not self._dirty:
                return
            year, month = self._period
            doc = {"year": year, "month": month, "calls": self._calls, "total_calls": self._total}
            self._dirty = False
        try:
            with self._flush_lock:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                tmp = self.path.with_suffix(".tmp")
                tmp.write_text(json.dumps(doc))
                os.replace(tmp, self.path)
        except OSError as exc:
            log.warning("usage: cannot write %s: %s", self.path, exc)
            with self._lock:
                self._dirty = True
