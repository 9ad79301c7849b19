"""The store as a delivery output: spool rows (``{"data", "images", "source"}``) -> upserts.

It runs on the store's own DeliveryWorker, so a store that is briefly unusable (a PostgreSQL
restart, a full disk) only delays events: they stay in the spool and are retried.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from stream.delivery.spool import Item
from stream.delivery.worker import DeliveryError
from stream.store.events import EventStore

__all__ = ["STORE_OUTPUT", "StoreSender", "SnapshotStoreSender", "store_payload"]

STORE_OUTPUT = "store"


def store_payload(data: dict[str, Any], images: dict[str, bytes | None],
                  source: str = "camera") -> dict[str, Any]:
    return {"data": data, "source": source,
            "images": {k: base64.b64encode(v).decode() for k, v in images.items() if v}}


class StoreSender:
    def __init__(self, store: EventStore) -> None:
        self.store = store

    def status(self) -> dict[str, Any]:
        return self.store.health()

    def __call__(self, item: Item) -> None:
        p = item.payload
        images = {k: base64.b64decode(v) for k, v in (p.get("images") or {}).items()}
        try:
            self.store.put(p["data"], images=images, source=p.get("source", "camera"))
        except (OSError, ValueError, KeyError) as exc:
            raise DeliveryError(f"store: {type(exc).__name__}: {exc}") from exc
        except Exception as exc:  # database errors of either backend: retried later
            raise DeliveryError(f"store: {type(exc).__name__}: {exc}") from exc


class SnapshotStoreSender:
    """Snapshot API results (spooled ``{"data": result}``) -> one stored event per plate read:
    ``event_id`` is the spool's (``-N`` appended for the Nth plate of one image), the camera is
    the request's ``camera_id`` or ``snapshot``; known plates are matched here."""

    def __init__(self, store: EventStore, known: Any = None) -> None:
        self.store = store
        self.known = known

    def __call__(self, item: Item) -> None:
        result = item.payload.get("data") or {}
        for i, r in enumerate(result.get("results") or []):
            data = {**result, "results": [r],
                    "event_id": item.event_id if i == 0 else f"{item.event_id}-{i}",
                    "camera_id": result.get("camera_id") or "snapshot",
                    "known_plate": self.known.match(r.get("plate", "")) if self.known else None}
            if not data.get("timestamp"):
                data["timestamp"] = datetime.fromtimestamp(item.created, UTC).isoformat()
            try:
                self.store.put(data, source="snapshot")
            except Exception as exc:  # retried from the spool
                raise DeliveryError(f"store: {type(exc).__name__}: {exc}") from exc
