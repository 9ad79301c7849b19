"""The store as a delivery output: spool rows (``{"data", "images", "source"}``) -> upserts.

It runs on the store's own DeliveryWorker, so a store that is briefly unusable (a PostgreSQL
restart, a full disk) only delays events: they stay in the spool and are retried.
"""

from __future__ import annotations

import base64
from typing import Any

from stream.delivery.spool import Item
from stream.delivery.worker import DeliveryError
from stream.store.events import EventStore

__all__ = ["STORE_OUTPUT", "StoreSender", "store_payload"]

STORE_OUTPUT = "store"


def store_payload(data: dict[str, Any], images: dict[str, bytes | None],
                  source: str = "camera") -> dict[str, Any]:
    return {"data": data, "source": source,
            "images": {k: base64.b64encode(v).decode() for k, v in images.items() if v}}


class StoreSender:
    def __init__(self, store: EventStore) -> None:
        self.store = store

    def __call__(self, item: Item) -> None:
        p = item.payload
        images = {k: base64.b64decode(v) for k, v in (p.get("images") or {}).items()}
        try:
            self.store.put(p["data"], images=images, source=p.get("source", "camera"))
        except (OSError, ValueError, KeyError) as exc:
            raise DeliveryError(f"store: {type(exc).__name__}: {exc}") from exc
        except Exception as exc:  # database errors of either backend: retried later
            raise DeliveryError(f"store: {type(exc).__name__}: {exc}") from exc
