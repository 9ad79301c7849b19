"""Decoded frames and the hand-off between a camera's decoding and analysis threads."""

from __future__ import annotations

import dataclasses
import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime

import numpy as np

__all__ = ["Frame", "SourceEnded", "FrameSlot"]


@dataclass(frozen=True, slots=True, eq=False)
class Frame:
    """One analysis frame.

    Attributes:
        image: (h, w, 3) uint8 BGR at the analysis size.
        ts: seconds on the camera's own clock, only ever increasing (files: media position
            plus an offset per loop/reopen; live: monotonic time). Tracking runs on it.
        wall: when it was decoded, UTC.
        position: seconds from the start of a file (None for live sources).
        index: decoded-frame counter of the camera.
        scale: analysis size / source size (zones are given in source pixels).
        cut: the picture changed as a whole (scene cut, fast pan) since the frame before
            it that the decoder saw: no track carries over.
        thumb: its grey thumbnail (stream.sources.reader.to_grey_thumbnail), for the motion
            gate.
    """

    image: np.ndarray
    ts: float
    wall: datetime
    position: float | None
    index: int
    scale: float
    cut: bool = False
    thumb: np.ndarray | None = None


@dataclass(frozen=True, slots=True)
class SourceEnded:
    """Marker put in the slot when a source ends or disconnects: finish the open tracks."""

    reason: str
    final: bool  # no more frames will come (a file that does not loop)


class FrameSlot:
    """A small mailbox: the newest frame wins, replaced frames are counted as dropped.

    With ``block=True`` (files read as fast as possible) ``put`` waits for the consumer
    instead, so no frame is lost. End markers are never dropped and keep their order.
    """

    def __init__(self, block: bool = False) -> None:
        self.block = block
        self._cond = threading.Condition()
        self._items: deque[Frame | SourceEnded] = deque()
        self.dropped = 0
        self.shed = 0  # sampled frames the decoding side left out, running behind (never put)

    def _has_frame(self) -> bool:
        return any(isinstance(i, Frame) for i in self._items)

    def put(self, frame: Frame, stop: threading.Event) -> None:
        with self._cond:
            if self.block:
                while self._has_frame() and not stop.is_set():
                    self._cond.wait(0.2)
            if self._items and isinstance(self._items[-1], Frame):
                if self._items[-1].cut and not frame.cut:  # a cut in between still counts
                    frame = dataclasses.replace(frame, cut=True)
                self._items[-1] = frame
                self.dropped += 1
            else:
                self._items.append(frame)
            self._cond.notify_all()

    @property
    def lost(self) -> int:
        """Sampled frames that never reached the analysis: replaced here, or shed before."""
        return self.dropped + self.shed

    def end(self, marker: SourceEnded) -> None:
        with self._cond:
            self._items.append(marker)
            self._cond.notify_all()

    def get(self, timeout: float) -> Frame | SourceEnded | None:
        """The oldest pending item, or None after ``timeout`` seconds."""
        with self._cond:
            if not self._items:
                self._cond.wait(timeout)
            if not self._items:
                return None
            item = self._items.popleft()
            self._cond.notify_all()
            return item
