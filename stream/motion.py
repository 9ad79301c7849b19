"""A cheap motion gate: skip inference on frames where nothing moved."""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["MotionGate"]


class MotionGate:
    """Compares a small grey thumbnail with the last frame that went to inference.

    Comparing with the last *analysed* frame (not the previous one) means slow motion adds up
    until it passes the threshold. A frame is analysed at least every ``max_skip_s`` anyway.

    Args:
        min_fraction: share of thumbnail pixels that must change (0..1).
        pixel_delta: grey-level change that counts as a changed pixel.
        max_skip_s: longest run of skipped frames, seconds of the camera clock.
    """

    def __init__(self, min_fraction: float = 0.002, pixel_delta: int = 20,
                 max_skip_s: float = 2.0, width: int = 160) -> None:
        self.min_fraction = min_fraction
        self.pixel_delta = pixel_delta
        self.max_skip_s = max_skip_s
        self.width = width
        self._ref: np.ndarray | None = None
        self._ref_ts = 0.0

    def moved(self, image: np.ndarray, ts: float) -> bool:
        h, w = image.shape[:2]
        small = cv2.resize(image, (self.width, max(1, h * self.width // w)),
                           interpolation=cv2.INTER_AREA)
        small = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        if self._ref is None or self._ref.shape != small.shape or (
            ts - self._ref_ts >= self.max_skip_s
        ):
            self._ref, self._ref_ts = small, ts
            return True
        changed = np.count_nonzero(cv2.absdiff(small, self._ref) > self.pixel_delta)
        if changed >= self.min_fraction * small.size:
            self._ref, self._ref_ts = small, ts
            return True
        return False

    def reset(self) -> None:
        self._ref = None
