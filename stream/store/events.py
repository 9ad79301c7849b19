"""The event store: every event's row, its crops as JPEG files, searchable by plate and time.

Rows are upserted by ``event_id`` (a resend from the spool replaces, never duplicates).
Retention (``keep_days``, ``max_image_mb``) runs on its own thread in small batches, so it
never holds the writer for long and ingestion goes on meanwhile.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rapidfuzz import fuzz

from stream.known_plates import KnownPlate, normalize_plate, plate_key
from stream.store.backend import Backend, PostgresBackend, SqliteBackend, StoreError
from stream.store.config import StoreConfig
from stream.store.query import (
    EventQuery,
    Page,
    decode_cursor,
    encode_cursor,
    plate_variants,
    wildcard_parts,
)
from stream.store.schema import EVENT_COLUMNS

__all__ = ["EventStore", "StoredEvent", "open_store", "StoreError"]

log = logging.getLogger(__name__)

FUZZY_RATIO = 80.0          # the repeat-suppression rule (cameras' match_ratio default)
RETENTION_EVERY_S = 60.0
RETENTION_BATCH = 500
IMAGE_KINDS = ("vehicle", "plate")


@dataclass(frozen=True)
class StoredEvent:
    event_id: str
    time: datetime
    camera: str
    plate: str
    score: float | None
    dscore: float | None
    region: str | None
    vehicle_type: str | None
    direction: int | None
    known_plate: dict[str, Any] | None
    data: dict[str, Any]
    source: str
    vehicle_image: str | None
    plate_image: str | None
    node: str | None = None  # the edge node that saw it (events received by a hub)

    @classmethod
    def from_row(cls, r: tuple[Any, ...]) -> StoredEvent:
        d = dict(zip(EVENT_COLUMNS, r, strict=True))
        return cls(
            d["event_id"], datetime.fromtimestamp(d["ts"], UTC), d["camera"], d["plate"],
            d["score"], d["dscore"], d["region"], d["vehicle_type"], d["direction"],
            json.loads(d["known_json"]) if d["known_json"] else None, json.loads(d["data"]),
            d["source"], d["vehicle_image"], d["plate_image"], d["node"],
        )

    def to_json(self) -> dict[str, Any]:
        base = f"/api/v1/events/{self.event_id}"
        return {
            "event_id": self.event_id,
            "time": self.time.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z",
            "camera": self.camera, "plate": self.plate, "score": self.score,
            "dscore": self.dscore, "region": self.region, "vehicle_type": self.vehicle_type,
            "direction": self.direction, "known_plate": self.known_plate, "source": self.source,
            "node": self.node,
            "images": {"vehicle": f"{base}/vehicle.jpg" if self.vehicle_image else None,
                       "plate": f"{base}/plate.jpg" if self.plate_image else None},
            "data": self.data,
        }


def open_store(cfg: StoreConfig, state_dir: str | Path) -> EventStore:
    """Open (and migrate) the configured store. Raises StoreError with one line."""
    state = Path(state_dir).expanduser()
    images = Path(cfg.images_dir).expanduser()
    images = images if images.is_absolute() else state / images
    if cfg.url:
        backend: Backend = PostgresBackend(cfg.url, cfg.safe_url or "")
    else:
        path = Path(cfg.path).expanduser()
        backend = SqliteBackend(path if path.is_absolute() else state / path)
    return EventStore(backend, images, keep_days=cfg.keep_days, max_image_mb=cfg.max_image_mb)


def _fields(data: dict[str, Any]) -> dict[str, Any]:
    """The indexed columns of one Plate Recognizer event (its first result)."""
    results = data.get("results") or [{}]
    r = results[0]
    vehicle = r.get("vehicle") or {}
    region = r.get("region") or {}
    direction = r.get("direction")
    ts = data.get("timestamp")
    try:
        when = datetime.fromisoformat(str(ts)) if ts else datetime.now(UTC)
    except ValueError:
        when = datetime.now(UTC)
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when
    plate = normalize_plate(str(r.get("plate") or ""))
    return {
        "ts": when.timestamp(), "camera": str(data.get("camera_id") or ""), "plate": plate,
        "plate_key": plate_key(plate), "score": r.get("score"), "dscore": r.get("dscore"),
        "region": region.get("code") if isinstance(region, dict) else None,
        "vehicle_type": (vehicle.get("type") or None) if vehicle.get("score") else None,
        "direction": int(direction) if isinstance(direction, (int, float)) else None,
        "node": str(data["node_id"]) if data.get("node_id") else None,
    }


_INSERT = (f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) VALUES "
           f"({', '.join('?' for _ in EVENT_COLUMNS)})")


def _row(event_id: str, f: dict[str, Any], data: dict[str, Any], source: str,
         paths: dict[str, str | None], size: int) -> dict[str, Any]:
    known = data.get("known_plate")
    return {
        "event_id": event_id, **f,
        "known_list": known.get("list") if isinstance(known, dict) else None,
        "known_json": json.dumps(known) if isinstance(known, dict) else None,
        "data": json.dumps(data, separators=(",", ":")), "source": source,
        "vehicle_image": paths.get("vehicle"), "plate_image": paths.get("plate"),
        "image_bytes": size,
    }


class EventStore:
    def __init__(self, backend: Backend, images_dir: Path, *, keep_days: float = 30.0,
                 max_image_mb: float = 2000.0, retention_every_s: float = RETENTION_EVERY_S
                 ) -> None:
        self.db = backend
        self.images_dir = images_dir
        self.keep_days = keep_days
        self.max_image_bytes = int(max_image_mb * 1024 * 1024)
        self._listeners: list[Callable[[StoredEvent], None]] = []
        self._closed = threading.Event()
        self._retention_wake = threading.Event()
        self._retention_every_s = retention_every_s
        self.retention_runs = 0
        # one retention run at a time: a call while the thread's run is half done found
        # nothing left to delete and returned before the thread had counted its deletions
        self._retention_lock = threading.Lock()
        self.deleted_events = 0
        self.deleted_images = 0
        try:
            images_dir.mkdir(parents=True, exist_ok=True)
            backend.migrate()
            row = backend.read("SELECT COALESCE(SUM(image_bytes), 0) FROM events")
        except StoreError:
            backend.close()
            raise
        except Exception as exc:  # a broken file, a refused connection, a full disk...
            backend.close()
            raise StoreError(f"store: cannot open: {type(exc).__name__}: {exc}") from None
        self._image_bytes = int(row[0][0])
        self._retention = threading.Thread(target=self._retention_loop, name="store:retention",
                                           daemon=True)
        self._retention.start()

    @property
    def kind(self) -> str:
        return self.db.kind

    # -- writing ----------------------------------------------------------------------------
    def put(self, data: dict[str, Any], *, images: dict[str, bytes | None] | None = None,
            source: str = "camera") -> StoredEvent:
        """Insert or replace the event ``data["event_id"]`` with its crops."""
        event_id = str(data.get("event_id") or "")
        if not event_id:
            raise ValueError("store: an event without event_id")
        f = _fields(data)
        paths: dict[str, str | None] = {}
        size = 0
        day = datetime.fromtimestamp(f["ts"], UTC).strftime("%Y-%m-%d")
        for kind in IMAGE_KINDS:
            blob = (images or {}).get(kind)
            if not blob:
                paths[kind] = None
                continue
            rel = f"{day}/{event_id}-{kind}.jpg"
            target = self.images_dir / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(".tmp")
            tmp.write_bytes(blob)
            tmp.replace(target)
            paths[kind] = rel
            size += len(blob)
        row = _row(event_id, f, data, source, paths, size)
        updates = ", ".join(f"{c} = excluded.{c}" for c in EVENT_COLUMNS[1:])
        with self.db.tx():
            old = self.db.execute("SELECT image_bytes, vehicle_image, plate_image FROM events "
                                  "WHERE event_id = ?", (event_id,)).fetchone()
            self.db.execute(f"{_INSERT} ON CONFLICT (event_id) DO UPDATE SET {updates}",
                            [row[c] for c in EVENT_COLUMNS])
            self._add_variants({row["plate_key"]})
            self._image_bytes += size - (int(old[0]) if old else 0)
        if old:  # a resend whose crops changed names: drop the files no longer referenced
            for prev, new in ((old[1], paths["vehicle"]), (old[2], paths["plate"])):
                if prev and prev != new:
                    self._unlink(prev)
        stored = StoredEvent.from_row(tuple(row[c] for c in EVENT_COLUMNS))
        if self._image_bytes > self.max_image_bytes:
            self._retention_wake.set()
        for fn in list(self._listeners):
            try:
                fn(stored)
            except Exception:
                log.exception("store: an event listener failed")
        return stored

    def put_many(self, events: Sequence[dict[str, Any]], *, source: str = "camera") -> int:
        """Bulk import of events without images, in one transaction; an event_id already
        stored is left as it is. Returns how many were given."""
        rows, keys = [], set()
        for data in events:
            event_id = str(data.get("event_id") or "")
            if not event_id:
                raise ValueError("store: an event without event_id")
            row = _row(event_id, _fields(data), data, source, {}, 0)
            rows.append([row[c] for c in EVENT_COLUMNS])
            keys.add(row["plate_key"])
        with self.db.tx():
            self.db.executemany(f"{_INSERT} ON CONFLICT (event_id) DO NOTHING", rows)
            self._add_variants(keys)
        return len(rows)

    def _add_variants(self, keys: set[str]) -> None:
        """Index plate keys for fuzzy search (inside the caller's transaction)."""
        pairs = sorted({(v, k) for k in keys if k for v in plate_variants(k)})
        if pairs:
            self.db.executemany("INSERT INTO plate_variants (variant, plate_key) VALUES (?, ?) "
                                "ON CONFLICT DO NOTHING", pairs)

    def add_listener(self, fn: Callable[[StoredEvent], None]) -> None:
        self._listeners.append(fn)

    def remove_listener(self, fn: Callable[[StoredEvent], None]) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(fn)

    # -- reading ----------------------------------------------------------------------------
    def get(self, event_id: str) -> StoredEvent | None:
        rows = self.db.read(f"SELECT {', '.join(EVENT_COLUMNS)} FROM events WHERE event_id = ?",
                            (event_id,))
        return StoredEvent.from_row(rows[0]) if rows else None

    def image_path(self, event_id: str, kind: str) -> Path | None:
        if kind not in IMAGE_KINDS:
            return None
        rows = self.db.read(f"SELECT {kind}_image FROM events WHERE event_id = ?", (event_id,))
        if not rows or not rows[0][0]:
            return None
        p = self.images_dir / rows[0][0]
        return p if p.is_file() else None

    def fuzzy_keys(self, plate: str) -> list[str]:
        """Stored plate keys within the repeat-suppression ratio of ``plate`` (O/0, I/1, B/8
        folded), found through the one-deletion variants index."""
        key = plate_key(plate)
        if not key:
            return []
        variants = sorted(plate_variants(key))
        marks = ", ".join("?" for _ in variants)
        rows = self.db.read(f"SELECT DISTINCT plate_key FROM plate_variants WHERE variant IN "
                            f"({marks})", variants)
        return sorted(k for (k,) in rows if k == key or fuzz.ratio(k, key) >= FUZZY_RATIO)

    def query(self, q: EventQuery) -> Page:
        where: list[str] = []
        params: list[Any] = []
        if q.plate:
            if "*" in q.plate:
                parts = wildcard_parts(q.plate)
                if any(parts):
                    op, star = self.db.star()
                    where.append(f"plate_key {op} ?")
                    params.append(star.join(parts))
            else:
                keys = self.fuzzy_keys(q.plate)
                if not keys:
                    return Page([], None)
                where.append(f"plate_key IN ({', '.join('?' for _ in keys)})")
                params += keys
        if q.camera:
            where.append("camera = ?")
            params.append(q.camera)
        if q.node:
            where.append("node = ?")
            params.append(q.node)
        if q.since:
            where.append("ts >= ?")
            params.append(q.since.timestamp())
        if q.until:
            where.append("ts < ?")
            params.append(q.until.timestamp())
        if q.known is True:
            where.append("known_list IS NOT NULL")
        elif q.known is False:
            where.append("known_list IS NULL")
        elif isinstance(q.known, str):
            where.append("known_list = ?")
            params.append(q.known)
        if q.cursor:
            ts, eid = decode_cursor(q.cursor)
            where.append("(ts < ? OR (ts = ? AND event_id < ?))")
            params += [ts, ts, eid]
        sql = (f"SELECT {', '.join(EVENT_COLUMNS)} FROM events"
               f"{' WHERE ' + ' AND '.join(where) if where else ''} "
               f"ORDER BY ts DESC, event_id DESC LIMIT ?")
        rows = self.db.read(sql, [*params, q.limit + 1])
        events = [StoredEvent.from_row(r) for r in rows[:q.limit]]
        nxt = None
        if len(rows) > q.limit:
            last = rows[q.limit - 1]
            nxt = encode_cursor(last[1], last[0])
        return Page(events, nxt)

    def health(self) -> dict[str, Any]:
        """Cheap figures for /status/ (no table scan)."""
        return {"backend": self.kind, "image_mb": round(self._image_bytes / 2**20, 1),
                "max_image_mb": round(self.max_image_bytes / 2**20, 1),
                "keep_days": self.keep_days, "retention_runs": self.retention_runs,
                "deleted_events": self.deleted_events, "deleted_images": self.deleted_images}

    def stats(self) -> dict[str, Any]:
        rows = self.db.read("SELECT COUNT(*), MIN(ts), MAX(ts) FROM events")
        n, lo, hi = rows[0]

        def iso(t: float | None) -> str | None:
            return datetime.fromtimestamp(t, UTC).isoformat() if t is not None else None

        return {
            "backend": self.kind, "events": int(n), "oldest": iso(lo), "newest": iso(hi),
            "image_bytes": self._image_bytes, "max_image_bytes": self.max_image_bytes,
            "keep_days": self.keep_days, "retention_runs": self.retention_runs,
            "deleted_events": self.deleted_events, "deleted_images": self.deleted_images,
        }

    # -- known plates (the KnownPlates backend) ----------------------------------------------
    def known_load(self) -> list[tuple[str, str, str, str]]:
        return [tuple(r) for r in self.db.read(
            "SELECT list, plate, name, note FROM known_plates ORDER BY created, list, plate")]

    def known_save(self, e: KnownPlate) -> None:
        with self.db.tx():
            self.db.execute(
                "INSERT INTO known_plates (list, plate, name, note, created) VALUES "
                "(?, ?, ?, ?, ?) ON CONFLICT (list, plate) DO UPDATE SET name = excluded.name, "
                "note = excluded.note", (e.list, e.plate, e.name, e.note, time.time()))

    def known_remove(self, list_name: str, plate: str) -> None:
        with self.db.tx():
            self.db.execute("DELETE FROM known_plates WHERE list = ? AND plate = ?",
                            (list_name, plate))

    # -- retention --------------------------------------------------------------------------
    def _unlink(self, rel: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.images_dir / rel).unlink()

    def enforce_retention(self, now: float | None = None) -> tuple[int, int]:
        """Delete events older than keep_days, then the oldest events' images while their
        total is above max_image_mb. Batches of RETENTION_BATCH, the writer released in
        between. Returns (events deleted, events whose images were dropped). A call while
        another run is going waits for it, then runs (its counts are in ``stats``)."""
        with self._retention_lock:
            return self._enforce_retention(now)

    def _enforce_retention(self, now: float | None) -> tuple[int, int]:
        cutoff = (time.time() if now is None else now) - self.keep_days * 86400.0
        deleted = dropped = 0
        while not self._closed.is_set():
            rows = self.db.read("SELECT event_id, vehicle_image, plate_image FROM events "
                                "WHERE ts < ? ORDER BY ts LIMIT ?", (cutoff, RETENTION_BATCH))
            if not rows:
                break
            ids = [r[0] for r in rows]
            marks = ", ".join("?" for _ in ids)
            with self.db.tx():
                freed = self.db.execute(f"SELECT COALESCE(SUM(image_bytes), 0) FROM events "
                                        f"WHERE event_id IN ({marks})", ids).fetchone()[0]
                self.db.execute(f"DELETE FROM events WHERE event_id IN ({marks})", ids)
                self._image_bytes -= int(freed)
            for _, v, p in rows:
                for rel in (v, p):
                    if rel:
                        self._unlink(rel)
            deleted += len(rows)
        while not self._closed.is_set() and self._image_bytes > self.max_image_bytes:
            rows = self.db.read("SELECT event_id, vehicle_image, plate_image FROM events "
                                "WHERE image_bytes > 0 ORDER BY ts LIMIT ?", (RETENTION_BATCH,))
            if not rows:
                break
            for r in rows:
                if self._image_bytes <= self.max_image_bytes:
                    break
                with self.db.tx():
                    got = self.db.execute("SELECT image_bytes FROM events WHERE event_id = ?",
                                          (r[0],)).fetchone()
                    self.db.execute("UPDATE events SET vehicle_image = NULL, plate_image = NULL,"
                                    " image_bytes = 0 WHERE event_id = ?", (r[0],))
                    self._image_bytes -= int(got[0]) if got else 0
                for rel in r[1:]:
                    if rel:
                        self._unlink(rel)
                dropped += 1
        self.retention_runs += 1
        self.deleted_events += deleted
        self.deleted_images += dropped
        if deleted or dropped:
            log.info("store: retention deleted %d events older than %g days, dropped the "
                     "images of %d more (images now %.1f MiB)", deleted, self.keep_days, dropped,
                     self._image_bytes / 2**20)
        return deleted, dropped

    def _retention_loop(self) -> None:
        while not self._closed.is_set():
            try:
                self.enforce_retention()
            except Exception as exc:  # e.g. the database went away; try again next round
                if not self._closed.is_set():
                    log.warning("store: retention failed: %s: %s", type(exc).__name__, exc)
            self._retention_wake.wait(self._retention_every_s)
            self._retention_wake.clear()

    def size_on_disk(self) -> dict[str, int]:
        images = sum(p.stat().st_size for p in self.images_dir.rglob("*.jpg"))
        return {"database_bytes": int(self.db.size_bytes()), "image_bytes": images}

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        self._retention_wake.set()
        self._retention.join(10.0)
        self.db.close()
