"""Threads that stop on request, and the one order in which a deployment starts and stops.

``StoppableThread`` is the base of every long-lived thread (camera readers, analysers,
delivery workers): ``signal()`` asks it to stop, ``stop(timeout)`` also waits and warns once
when it does not exit in time. ``stop_threads`` signals a group first so its members stop in
parallel, then waits for all against one deadline.

``Supervisor`` (``stream.supervisor``) owns the order: start engine -> delivery -> analysis
-> sources -> server; stop sources -> analysis (open tracks are flushed to the spool) ->
delivery drain -> server -> engine.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable

__all__ = ["StoppableThread", "stop_threads"]

log = logging.getLogger(__name__)


class StoppableThread(threading.Thread):
    """A daemon thread whose ``run`` watches ``self.stopping`` (an Event)."""

    def __init__(self, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.stopping = threading.Event()

    def signal(self) -> None:
        """Ask the thread to stop (returns at once). Subclasses also wake what it waits on."""
        self.stopping.set()

    def stop(self, timeout: float = 10.0) -> bool:
        """Signal, wait up to ``timeout`` s; True when the thread has exited."""
        return not stop_threads([self], timeout)


def stop_threads(threads: Iterable[threading.Thread], timeout: float = 10.0) -> list[str]:
    """Signal every thread, then join them against one deadline. Returns the names of the
    ones still running (each logged once)."""
    threads = list(threads)
    for t in threads:
        signal = getattr(t, "signal", None)
        if signal is not None:
            signal()
    deadline = time.monotonic() + timeout
    alive = []
    for t in threads:
        if t.is_alive():
            t.join(max(0.0, deadline - time.monotonic()))
        if t.is_alive():
            log.warning("%s: did not exit within %.0f s", t.name, timeout)
            alive.append(t.name)
    return alive
