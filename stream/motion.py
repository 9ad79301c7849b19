"""A cheap motion gate: skip inference on frames where nothing moved."""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["MotionGate", "grey_thumbnail", "thumbnail_height", "THUMB_WIDTH"]

THUMB_WIDTH = 160


def thumbnail_height(w: int, h: int, width: int = THUMB_WIDTH) -> int:
    """The height of a ``width``-wide thumbnail of a w×h picture."""
    return max(1, h * width // w)


def grey_thumbnail(image: np.ndarray, width: int = THUMB_WIDTH) -> np.ndarray:
    """``image`` (BGR) as a small grey picture ``width`` pixels wide (area averaging).

    The stream's reader makes its equivalent once per sampled frame from the decoded frame's
    luma (stream.sources.reader.to_grey_thumbnail) and hands it to the scene check and the
    motion gate, which each made their own from the 1280-wide BGR frame (1.3 ms each).
    """
    h, w = image.shape[:2]
    small = cv2.resize(image, (width, thumbnail_height(w, h, width)),
                       interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)


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
                 max_skip_s: float = 2.0, width: int = THUMB_WIDTH) -> None:
        self.min_fraction = min_fraction
        self.pixel_delta = pixel_delta
        self.max_skip_s = max_skip_s
        self.width = width
        self._ref: np.ndarray | None = None
        self._ref_ts = 0.0
        # where it moved, when ``moved`` said so: (x1, y1, x2, y2) as fractions of the frame,
        # around the pixels that changed since the last analysed frame; None: all of it
        self.box: tuple[float, float, float, float] | None = None

    def moved(self, image: np.ndarray, ts: float, thumb: np.ndarray | None = None) -> bool:
        """Whether ``image`` moved since the last frame that went to inference; ``thumb``:
        its ``grey_thumbnail`` when already made."""
        if thumb is not None and thumb.shape[1] == self.width:
            small = thumb
        else:
            small = grey_thumbnail(image, self.width)
        self.box = None
        if self._ref is None or self._ref.shape != small.shape or (
            ts - self._ref_ts >= self.max_skip_s
        ):
            self._ref, self._ref_ts = small, ts
            return True
        diff = cv2.absdiff(small, self._ref) > self.pixel_delta
        if np.count_nonzero(diff) >= self.min_fraction * small.size:
            ys, xs = np.nonzero(diff)
            h, w = small.shape[:2]
            self.box = (xs.min() / w, ys.min() / h, (xs.max() + 1) / w, (ys.max() + 1) / h)
            self._ref, self._ref_ts = small, ts
            return True
        return False

    def reset(self) -> None:
        self._ref = None
        self.box = None
