"""A durable outbox in SQLite: every (event, output) pair is a row until it is delivered.

WAL mode with ``synchronous=FULL`` makes a committed ``put`` survive kill -9 and power loss,
which is what at-least-once delivery rests on.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Item", "Spool"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    output TEXT NOT NULL,
    event_id TEXT NOT NULL,
    payload TEXT NOT NULL,
    attachment BLOB,
    attachment_name TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'pending',     -- pending | delivered | failed
    next_at REAL NOT NULL DEFAULT 0,
    last_error TEXT,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (output, state, next_at, id);
"""

# Delivered rows are kept this long (for counts and debugging), then purged.
KEEP_DELIVERED_S = 3600.0
PURGE_EVERY_S = 60.0


@dataclass(frozen=True, slots=True)
class Item:
    id: int
    output: str
    event_id: str
    payload: dict[str, Any]
    attachment: bytes | None
    attachment_name: str | None
    attempts: int
    created: float


class Spool:
    """Thread-safe; one connection guarded by a lock (writes are small and infrequent)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._last_purge = 0.0  # monotonic; shared by every delivery thread on this spool

    def put(
        self,
        outputs: Sequence[str],
        event_id: str,
        payload: dict[str, Any],
        attachment: bytes | None = None,
        attachment_name: str | None = None,
    ) -> None:
        """Store one event for each output; committed to disk when this returns."""
        body = json.dumps(payload, separators=(",", ":"))
        now = time.time()
        rows = [(o, event_id, body, attachment, attachment_name, now) for o in outputs]
        with self._lock, self._db:
            self._db.executemany(
                "INSERT INTO outbox (output, event_id, payload, attachment, attachment_name, "
                "created) VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )

    def due(self, output: str, limit: int = 16, now: float | None = None) -> list[Item]:
        """Pending rows of ``output`` whose retry time has come, oldest first."""
        now = time.time() if now is None else now
        with self._lock:
            rows = self._db.execute(
                "SELECT id, output, event_id, payload, attachment, attachment_name, attempts, "
                "created FROM outbox WHERE output = ? AND state = 'pending' AND next_at <= ? "
                "ORDER BY id LIMIT ?",
                (output, now, limit),
            ).fetchall()
        return [Item(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5], r[6], r[7]) for r in rows]

    def ack(self, item_id: int) -> None:
        with self._lock, self._db:
            self._db.execute(
                "UPDATE outbox SET state = 'delivered', attachment = NULL, next_at = ? "
                "WHERE id = ?",
                (time.time(), item_id),
            )

    def retry(self, item_id: int, error: str, next_at: float, *, give_up: bool = False) -> None:
        state = "failed" if give_up else "pending"
        with self._lock, self._db:
            self._db.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_at = ?, "
                "state = ? WHERE id = ?",
                (error[:500], next_at, state, item_id),
            )

    def purge_if_due(self) -> None:
        """``purge_delivered`` at most once a minute, however many outputs share the spool
        (the DELETE scans the table)."""
        with self._lock:
            now = time.monotonic()
            if now - self._last_purge <= PURGE_EVERY_S:
                return
            self._last_purge = now
        self.purge_delivered()

    def purge_delivered(self, older_than_s: float = KEEP_DELIVERED_S) -> int:
        with self._lock, self._db:
            cur = self._db.execute(
                "DELETE FROM outbox WHERE state = 'delivered' AND next_at < ?",
                (time.time() - older_than_s,),
            )
        return cur.rowcount

    def counts(self, output: str) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute(
                "SELECT state, COUNT(*) FROM outbox WHERE output = ? GROUP BY state", (output,)
            ).fetchall()
        out = {"pending": 0, "failed": 0, "delivered": 0}
        out.update({state: n for state, n in rows})
        return out

    def close(self) -> None:
        with self._lock:
            self._db.close()
