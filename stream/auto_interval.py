"""``detect_interval: auto``: a camera that drops frames thins its search for new vehicles.

A camera whose analysis falls behind drops whichever frames arrive while its last ones are in
the engine (latest wins): every vehicle then loses frames at random, those of its best read
included; where decoding runs behind too, the decoders shed frames. With ``auto``, a camera
that loses (drops or sheds) more than DROP_RATIO of its sampled frames in two windows of WINDOW
frames in a row goes one step up, to ``detect_interval`` 1 (then 2): a frame
after one with no plate is not searched, while the plates being tracked are still read on
every sampled frame (stream.analysis). It comes back one step at a time when the box has the
CPU for it: the same governor as ``fast_decode: auto`` (stream.sources.headroom) grants the
steps, one camera at a time and before any camera gets decoding in full. The estimate of what
a step down adds is this camera's rate of frames not searched whole, times the engine's CPU per
frame.

Files read as fast as possible never drop a frame (their slot waits), so they stay at 0.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from stream.sources.frames import FrameSlot
from stream.sources.headroom import CpuHeadroom

__all__ = ["AutoInterval", "MAX_LEVEL"]

log = logging.getLogger(__name__)

MAX_LEVEL = 2  # a new vehicle is then looked for on every third analysed frame
WINDOW = 20  # sampled frames (4 s at fps 5)
DROP_RATIO = 0.05  # of a window's frames dropped: more, in two windows in a row, is overload
HOLD_S = 30.0  # after a step up, before asking for a step down


class AutoInterval:
    """One camera's ``detect_interval`` under ``auto``; ``level()`` once per frame taken.

    Args:
        name: the camera's name (the governor's key, and the log's).
        slot: the camera's frame slot (its ``lost`` count says whether it keeps up: frames
            dropped there, and frames its decoding shed, running behind; thinning the engine's
            work frees CPU for the decoders too, which run at a lower priority).
        headroom: the box's governor, shared with the other cameras.
        cost: CPU seconds the engine spends on one frame, None while unknown.
        clock: monotonic seconds.
    """

    def __init__(self, name: str, slot: FrameSlot, headroom: CpuHeadroom,
                 cost: Callable[[], float | None], *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name, self.slot, self.headroom = name, slot, headroom
        self._cost, self._clock = cost, clock
        self.current = 0
        self.changes = 0
        self._taken = 0
        self._window = (0, slot.lost)  # (taken, slot.lost) at the window's start
        self._over = 0  # windows in a row over DROP_RATIO
        self._raised_at: float | None = None
        self._mark = (clock(), 0)  # (time, thinned frames) at the last change

    def level(self, thinned: int) -> int:
        """The interval for the frame just taken from the slot. ``thinned``: this camera's
        frames so far that were not searched whole (between and around plates)."""
        now = self._clock()
        self._taken += 1
        taken0, dropped0 = self._window
        dropped = self.slot.lost - dropped0
        seen = self._taken - taken0 + dropped
        if seen >= WINDOW:
            self._over = self._over + 1 if dropped > DROP_RATIO * seen else 0
            self._window = (self._taken, self.slot.lost)
            if self._over >= 2:
                self._over = 0
                if self.current < MAX_LEVEL:
                    self._step(+1, now, thinned,
                               f"{dropped} of its last {seen} frames lost, and before")
                self._raised_at = now
                self.headroom.overloaded()
                return self.current
        if self.current and (self._raised_at is None or now - self._raised_at >= HOLD_S):
            t0, thinned0 = self._mark
            cost = self._cost()
            if cost is not None and now - t0 >= 1.0:
                # a step down searches whole about 1/current of the frames thinned now
                extra = (thinned - thinned0) / (now - t0) / self.current * cost
                if self.headroom.grant(self.name, extra, detection=True):
                    self._step(-1, now, thinned, "the CPU allows")
                    self.headroom.switched(self.name)
        return self.current

    def _step(self, by: int, now: float, thinned: int, why: str) -> None:
        self.current += by
        self.changes += 1
        self._mark = (now, thinned)
        self.headroom.thinned(self.name, self.current > 0)
        log.info("camera %s: detect_interval %d (%s)", self.name, self.current, why)
