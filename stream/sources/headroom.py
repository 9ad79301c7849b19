"""How much CPU the box has to spare, and which camera may spend some of it on decoding in full.

``fast_decode: auto`` cameras start without the deblocking filter (reads hold: at the event
level they read the same, scripts/eval_fast_decode.py) and decode in full only where the CPU
allows it: one camera at a time, each after the box has stayed idle enough for a while with
the camera before it decoding in full. A camera that decides on its own cannot know what its
neighbours will do: eight cameras that each see half a core idle all switch at once and
overload the box together (stop 21's ``auto`` started every camera in full: at N = 8 they fell
behind together and shed frames until their next keyframe).

Cameras whose detection is thinned (``detect_interval: auto``, stream.auto_interval) ask the
same governor for their frames back, and come first: while any camera is thinned, no camera is
granted decoding in full (finding vehicles matters more than deblocking their frames).

Idle is measured system-wide (psutil: other processes and a VM's steal time count as busy) and
capped by what this process may use (CPU affinity, a cgroup's CPU quota) minus what it uses.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import psutil

__all__ = ["CpuHeadroom", "CpuMeter", "cpu_capacity"]

log = logging.getLogger(__name__)

RESERVE = 0.3  # of the CPU this process may use, still idle after one more camera decodes in full
SAMPLE_S = 2.0  # one idle reading per this many seconds (while some camera is asking)
WINDOW_S = 10.0  # a grant needs this long of readings, and takes the least idle among them
PENDING_MAX_S = 30.0  # a granted camera that never switched (no keyframe) stops blocking then


def cpu_capacity(cgroup: Path = Path("/sys/fs/cgroup")) -> float:
    """Cores this process may use: its CPU affinity, capped by a cgroup v2 CPU quota."""
    cores = float(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                  else os.cpu_count() or 1)
    try:
        quota, period = (cgroup / "cpu.max").read_text().split()
        if quota != "max":
            cores = min(cores, int(quota) / int(period))
    except (OSError, ValueError):  # no cgroup v2 here, or no limit
        pass
    return cores


class CpuMeter:
    """Idle cores available to this process between one ``idle_cores()`` call and the next."""

    def __init__(self) -> None:
        self.capacity = cpu_capacity()
        self._cpus = psutil.cpu_count() or 1
        self._proc = psutil.Process()
        self._last = self._read()

    def _read(self) -> tuple[float, float, float, float]:
        t = psutil.cpu_times()
        idle = t.idle + getattr(t, "iowait", 0.0)
        busy = sum(getattr(t, f) for f in ("user", "nice", "system", "irq", "softirq", "steal")
                   if hasattr(t, f))
        own = sum(self._proc.cpu_times()[:2])
        return time.monotonic(), idle, idle + busy, own

    def idle_cores(self) -> float | None:
        """None when no time has passed since the last call (the clocks did not move)."""
        now = self._read()
        wall, idle, total, own = (a - b for a, b in zip(now, self._last, strict=True))
        if wall <= 0 or total <= 0:
            return None
        self._last = now
        system_idle = idle / total * self._cpus
        own_idle = self.capacity - own / wall
        return max(0.0, min(system_idle, own_idle, self.capacity))


class CpuHeadroom:
    """Grants decoding in full (or detection on every frame) to one ``auto`` camera at a time,
    as idle CPU allows.

    ``grant(name, extra)`` is asked by a camera decoding fast (once per sampled frame: cheap),
    ``grant(name, extra, detection=True)`` by a camera whose detection is thinned; it is True
    when the least idle over the last WINDOW_S, minus ``extra`` (what the grant would add, in
    cores), leaves RESERVE of the capacity idle, and no switch, grant or overload happened in
    that window. ``switched()`` and ``overloaded()`` start the window anew.
    """

    def __init__(self, meter: Callable[[], float | None] | None = None, capacity: float | None
                 = None, *, reserve: float = RESERVE, sample_s: float = SAMPLE_S,
                 window_s: float = WINDOW_S, clock: Callable[[], float] = time.monotonic) -> None:
        if meter is None:
            cpu = CpuMeter()
            meter, capacity = cpu.idle_cores, cpu.capacity if capacity is None else capacity
        self.capacity = capacity or cpu_capacity()
        self.reserve, self.sample_s, self.window_s = reserve, sample_s, window_s
        self._meter, self._clock = meter, clock
        self._lock = threading.Lock()
        # the last window's readings: a box that stays short of idle CPU never restarts it
        self._needed = max(1, math.ceil(window_s / sample_s) if sample_s > 0 else 1)
        self._readings: deque[float] = deque(maxlen=self._needed)
        self._since = clock()  # readings count from here
        self._last_sample = self._since
        self._pending: tuple[str, float] | None = None  # granted, not switched yet
        self.idle: float | None = None  # the latest reading, cores
        self.grants = 0
        self._thinned: set[str] = set()  # cameras whose detection is thinned now

    def thinned(self, name: str, on: bool) -> None:
        """Camera ``name``'s detection is thinned (``on``) or back on every frame."""
        with self._lock:
            (self._thinned.add if on else self._thinned.discard)(name)

    def grant(self, name: str, extra: float, *, detection: bool = False) -> bool:
        with self._lock:
            now = self._clock()
            if now - self._last_sample >= self.sample_s:
                self._last_sample = now
                idle = self._meter()
                if idle is not None and math.isfinite(idle):
                    self.idle = idle
                    self._readings.append(idle)
            if self._thinned and not detection:
                return False
            if self._pending is not None:
                if now - self._pending[1] < PENDING_MAX_S:
                    return False
                self._pending = None
            if now - self._since < self.window_s or len(self._readings) < self._needed:
                return False
            least = min(self._readings)
            if least - extra < self.reserve * self.capacity:
                return False
            log.info("camera %s: %.2f of %.3g cores idle for %.0f s: %s", name, least,
                     self.capacity, self.window_s, "one step more detection" if detection
                     else "decoding in full from the next keyframe")
            self._pending = (name, now)
            self.grants += 1
            self._restart(now)
            return True

    def switched(self, name: str) -> None:
        """A camera's decoder changed mode: readings before it say nothing of now."""
        with self._lock:
            if self._pending is not None and self._pending[0] == name:
                self._pending = None
            self._restart(self._clock())

    def overloaded(self) -> None:
        with self._lock:
            self._restart(self._clock())

    def _restart(self, now: float) -> None:
        self._since = self._last_sample = now
        self._readings.clear()
        self._meter()  # the next reading covers the time from now on
