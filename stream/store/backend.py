"""Database connections for the event store: SQLite (WAL) or PostgreSQL (psycopg 3).

Both speak the same SQL (written with ``?`` placeholders; PostgreSQL gets ``%s``). One writer
connection behind a lock; each reading thread has its own connection, so API queries never
wait for ingestion (SQLite WAL readers do not block the writer, nor it them).
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from engine.errors import EngineError
from stream.store.schema import MIGRATIONS

__all__ = ["Backend", "SqliteBackend", "PostgresBackend", "StoreError"]

log = logging.getLogger(__name__)


class StoreError(EngineError, RuntimeError):
    """The store cannot be opened or used; one line for the user."""


class Backend:
    kind = ""
    pattern_op = ""  # the wildcard operator and its '*' replacement

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._local = threading.local()
        self._readers: list[Any] = []
        self._readers_lock = threading.Lock()
        self.w = self._connect()

    # -- to implement ---------------------------------------------------------------------
    def _connect(self) -> Any:
        raise NotImplementedError

    def _sql(self, sql: str) -> str:
        return sql

    def star(self) -> tuple[str, str]:
        raise NotImplementedError

    # -- shared ---------------------------------------------------------------------------
    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """On the writer connection (hold ``lock`` or use ``tx``)."""
        return self.w.execute(self._sql(sql), tuple(params))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        cur = self.w.cursor()
        cur.executemany(self._sql(sql), rows)

    @contextlib.contextmanager
    def tx(self) -> Iterator[None]:
        with self.lock:
            self.w.execute("BEGIN")
            try:
                yield
            except BaseException:
                self.w.execute("ROLLBACK")
                raise
            self.w.execute("COMMIT")

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """On this thread's own reading connection."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return list(conn.execute(self._sql(sql), tuple(params)).fetchall())

    def migrate(self) -> int:
        with self.lock:
            self.w.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = self.w.execute("SELECT MAX(version) FROM schema_version").fetchone()
            version = row[0] or 0
            for n, stmts in enumerate(MIGRATIONS[version:], start=version + 1):
                with self.tx():
                    for s in stmts:
                        if isinstance(s, tuple):
                            if s[0] != self.kind:
                                continue
                            s = s[1]
                        self.w.execute(s)
                    self.w.execute(self._sql("INSERT INTO schema_version VALUES (?)"), (n,))
                log.info("store: schema migrated to version %d", n)
            return len(MIGRATIONS)

    def close(self) -> None:
        with self._readers_lock:
            for c in self._readers:
                with contextlib.suppress(Exception):
                    c.close()
            self._readers.clear()
        with self.lock:
            self.w.close()


class SqliteBackend(Backend):
    kind = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        super().__init__()

    def _connect(self) -> sqlite3.Connection:
        try:
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None,
                                 timeout=30.0)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # WAL: durable at checkpoints, never corrupt
        except sqlite3.Error as exc:
            raise StoreError(f"store: cannot open {self.path}: {exc}") from None
        return db

    def star(self) -> tuple[str, str]:
        return "GLOB", "*"

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.path.parent.glob(self.path.name + "*")
                   if p.is_file())


class PostgresBackend(Backend):
    kind = "pg"

    def __init__(self, url: str, safe_url: str) -> None:
        self.url = url
        self.safe_url = safe_url
        super().__init__()

    def _connect(self) -> Any:
        try:
            import psycopg
        except ImportError:
            raise StoreError("store: PostgreSQL needs psycopg (pip install 'psycopg[binary]')") \
                from None
        try:
            return psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StoreError(f"store: cannot connect to {self.safe_url}: {msg}") from None

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s")

    def star(self) -> tuple[str, str]:
        return "LIKE", "%"

    def size_bytes(self) -> int:
        return int(self.read("SELECT pg_total_relation_size('events') + "
                             "pg_total_relation_size('plate_variants')")[0][0])
