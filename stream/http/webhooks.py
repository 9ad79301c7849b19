"""Snapshot webhooks: every result is POSTed as ``{"hook": {...}, "data": result}`` to each
configured target, from a disk spool (pending deliveries survive a restart), in the
background, with bounded retries. A target with ``image: true`` gets Plate Recognizer's
"Webhook With Image" instead: multipart/form-data with the payload as a ``json`` text field
and the uploaded image as ``upload``."""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from stream import wire
from stream.delivery import DeliveryWorker, Item, Spool, WebhookSender, stop_workers
from stream.server_settings import WebhookTarget
from stream.store.feed import STORE_OUTPUT

__all__ = ["SnapshotWebhooks", "EVENT"]

log = logging.getLogger(__name__)

EVENT = wire.SNAPSHOT_HOOK_EVENT
MAX_ATTEMPTS = 8          # about 4 minutes of retries with the backoff below, then "failed"
BACKOFF_INITIAL_S = 1.0
BACKOFF_MAX_S = 60.0
REQUEST_TIMEOUT_S = 15.0


class _HookSend:
    """Wraps the spooled response in the target's webhook envelope and posts it."""

    def __init__(self, target: WebhookTarget, hook_id: int, timeout: float) -> None:
        self.target, self.hook_id = target.url, hook_id
        self.sender = WebhookSender(target.url, timeout=timeout, multipart=target.image)

    def __call__(self, item: Item) -> None:
        body = wire.snapshot_webhook(item.payload["data"], self.target, self.hook_id)
        self.sender(dataclasses.replace(item, payload=body))

    def close(self) -> None:
        self.sender.close()


class SnapshotWebhooks:
    """One spool file and one DeliveryWorker per target.

    Args:
        targets: webhook URLs; the hook ``id`` is the 1-based position in this list.
        spool_path: SQLite spool (created when there are targets).
        max_attempts: deliveries are given up (kept as failed in the spool) after this many.
    """

    def __init__(
        self, targets: Sequence[WebhookTarget | str], spool_path: str | Path, *,
        max_attempts: int = MAX_ATTEMPTS, backoff_initial: float = BACKOFF_INITIAL_S,
        backoff_max: float = BACKOFF_MAX_S, timeout: float = REQUEST_TIMEOUT_S,
        store: Callable[[Item], None] | None = None,
    ) -> None:
        self.targets = tuple(t if isinstance(t, WebhookTarget) else WebhookTarget(t)
                             for t in targets)
        self.store = store  # the event store's sender: every result is kept there too
        self.spool_path = Path(spool_path)
        self._opts = {"max_attempts": max_attempts, "backoff_initial": backoff_initial,
                      "backoff_max": backoff_max}
        self._timeout = timeout
        self._spool: Spool | None = None
        self._workers: list[tuple[str, DeliveryWorker]] = []
        self._store_worker: DeliveryWorker | None = None

    @staticmethod
    def output_name(target: str) -> str:
        # Keyed by URL, so rows pending for a target still find it after a restart even if
        # the list was reordered.
        return f"snapshot:{target}"

    def start(self) -> None:
        if (not self.targets and self.store is None) or self._spool is not None:
            return
        self._spool = Spool(self.spool_path)
        if self.store is not None:
            self._store_worker = DeliveryWorker(self._spool, STORE_OUTPUT, self.store)
            self._store_worker.start()
        for i, target in enumerate(self.targets, start=1):
            worker = DeliveryWorker(self._spool, self.output_name(target.url),
                                    _HookSend(target, i, self._timeout), **self._opts)
            worker.start()
            self._workers.append((target, worker))
        log.info("webhooks: %d target(s), spool %s", len(self.targets), self.spool_path)

    @property
    def wants_image(self) -> bool:
        return any(t.image for t in self.targets)

    def enqueue(self, result: dict[str, Any], image: bytes | None = None,
                image_name: str | None = None) -> None:
        """Spool one result for every target (committed when this returns; blocking). The
        image is kept only when a target sends it."""
        if self._spool is None:
            return
        outputs = [self.output_name(t.url) for t, _ in self._workers]
        if self._store_worker is not None:
            outputs.append(STORE_OUTPUT)
        keep = image if self.wants_image else None
        self._spool.put(outputs, uuid.uuid4().hex, {"data": result}, keep,
                        image_name if keep is not None else None)
        for worker in self._all_workers():
            worker.notify()

    def _all_workers(self) -> list[DeliveryWorker]:
        extra = [self._store_worker] if self._store_worker is not None else []
        return [w for _, w in self._workers] + extra

    def info(self) -> list[dict[str, Any]]:
        """What ``/info/`` and ``/status/`` list: targets with their delivery counts."""
        if self._spool is None:
            return [{"id": i, "target": t.url, "event": EVENT, "image": t.image}
                    for i, t in enumerate(self.targets, start=1)]
        out = []
        for i, (target, worker) in enumerate(self._workers, start=1):
            stats = worker.stats()
            out.append({"id": i, "target": target.url, "event": EVENT, "image": target.image,
                        "pending": stats["pending"],
                        "failed": stats["failed"], "delivered": stats["delivered"],
                        "last_error": stats["last_error"]})
        return out

    def stop(self, timeout: float = 10.0) -> None:
        stop_workers(self._all_workers(), self._spool, timeout)
        self._workers = []
        self._store_worker = None
        self._spool = None
