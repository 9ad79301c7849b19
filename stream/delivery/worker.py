"""One delivery thread per output: drain the spool, retry with capped backoff, never drop."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from stream.backoff import Backoff
from stream.delivery.spool import Item, Spool
from stream.lifecycle import StoppableThread, stop_threads

__all__ = ["DeliveryError", "DeliveryWorker", "stop_workers"]

log = logging.getLogger(__name__)


class DeliveryError(Exception):
    """A retryable delivery failure (receiver down, non-2xx answer, timeout...)."""


class DeliveryWorker(StoppableThread):
    """Delivers the spool rows of one output through ``send``.

    Args:
        send: delivers one item; returning means delivered (the row is acked), raising
            means "try again later".
        backoff_initial, backoff_max: retry delay doubles from initial up to max (seconds).
        max_attempts: give up (row marked failed, kept) after this many; None = forever.
        poll_s: how often to look for new rows when idle (``notify()`` wakes it sooner).
    """

    def __init__(
        self,
        spool: Spool,
        output: str,
        send: Callable[[Item], None],
        *,
        backoff_initial: float = 1.0,
        backoff_max: float = 60.0,
        max_attempts: int | None = None,
        poll_s: float = 0.5,
    ) -> None:
        try:
            self._backoff = Backoff(backoff_initial, backoff_max)
        except ValueError as exc:
            raise ValueError(f"deliver:{output}: {exc}") from None
        if max_attempts is not None and max_attempts < 1:
            raise ValueError(f"deliver:{output}: max_attempts must be >= 1, got {max_attempts}")
        super().__init__(f"deliver:{output}")
        self.spool = spool
        self.output = output
        self.send = send
        self.max_attempts = max_attempts
        self.poll_s = poll_s
        self._wake = threading.Event()
        self._delivered = 0
        self._failures = 0
        self._last_error: str | None = None

    def notify(self) -> None:
        """New rows were put: look now instead of at the next poll."""
        self._wake.set()

    def signal(self) -> None:
        super().signal()
        self._wake.set()

    def stats(self) -> dict[str, Any]:
        counts = self.spool.counts(self.output)
        return {
            "pending": counts["pending"],
            "failed": counts["failed"],
            "delivered": self._delivered,
            "failed_attempts": self._failures,
            "last_error": self._last_error,
        }

    def run(self) -> None:
        while not self.stopping.is_set():
            items = self.spool.due(self.output)
            for item in items:
                if self.stopping.is_set():
                    return
                if self._deliver(item):
                    self._backoff.reset()
                    continue
                # The receiver is likely down: back off as a whole instead of trying every
                # pending row against it; rows stay in order and are retried first.
                self.stopping.wait(self._backoff.next())
                break
            self.spool.purge_if_due()
            if not items:
                self._wake.wait(self.poll_s)
                self._wake.clear()

    def _deliver(self, item: Item) -> bool:
        try:
            self.send(item)
        except Exception as exc:  # any failure is retried; the row is never lost
            attempts = item.attempts + 1
            give_up = self.max_attempts is not None and attempts >= self.max_attempts
            self._failures += 1
            self._last_error = f"{type(exc).__name__}: {exc}"
            log.warning(
                "%s: event %s attempt %d failed: %s%s", self.name, item.event_id, attempts,
                self._last_error, "; giving up" if give_up else "",
            )
            self.spool.retry(item.id, self._last_error, time.time(), give_up=give_up)
            return False
        self.spool.ack(item.id)
        self._delivered += 1
        return True


def stop_workers(workers: Sequence[DeliveryWorker], spool: Spool | None,
                 timeout: float = 10.0) -> None:
    """Stop delivery threads, then close what they used: each one's sender (when it has a
    ``close``) once its thread has exited, and the spool once none is left running (a thread
    that did not exit in time may still use both)."""
    stop_threads(workers, timeout)
    alive = False
    for worker in workers:
        if worker.is_alive():
            alive = True
            continue
        close = getattr(worker.send, "close", None)
        if close is not None:
            close()
    if spool is not None and not alive:
        spool.close()
