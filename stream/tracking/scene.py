"""Scene cuts and fast pans: when the whole picture changes at once, no track carries over.

A plate tracker matches plates by position, so after a hard cut (an edited clip, a PTZ camera
jumping to a preset, a handheld camera swung round) the plate that now sits where another one
was would join that other vehicle's track. Comparing tiny grey thumbnails of consecutive
analysed frames finds such frames cheaply: vehicles moving through a still scene change a
small part of the picture, a cut or a pan changes much more of it. Measured on the sample
videos (64-px thumbnails, grey change > 20): moving vehicles change at most ~6 % of the
thumbnail between frames (~10 % at every 3rd frame), the cut inside cars.mp4 (the same toll
booth, another moment) 14-18 %, a cut to another scene 30-40 %; hence 12 %.
"""

from __future__ import annotations

import cv2
import numpy as np

from stream.motion import grey_thumbnail, thumbnail_height

__all__ = ["SceneChange"]


class SceneChange:
    """``changed(image)``: whether this frame is a different scene from the previous one.

    Args:
        pixel_delta: grey-level change that counts as a changed thumbnail pixel.
        min_fraction: share of changed thumbnail pixels that makes a new scene (0..1).
        width: thumbnail width in pixels.
    """

    def __init__(self, pixel_delta: int = 20, min_fraction: float = 0.12,
                 width: int = 64) -> None:
        self.pixel_delta = pixel_delta
        self.min_fraction = min_fraction
        self.width = width
        self._prev: np.ndarray | None = None

    def fraction(self, image: np.ndarray, grey: np.ndarray | None = None) -> float:
        """Share of thumbnail pixels that changed since the previous call (0 for the first).

        ``grey``: a grey thumbnail of ``image`` at least ``width`` wide, to start from instead
        of the full frame (stream.motion.grey_thumbnail)."""
        if grey is not None and grey.shape[1] >= self.width:
            h, w = grey.shape[:2]
            small = cv2.resize(grey, (self.width, thumbnail_height(w, h, self.width)),
                               interpolation=cv2.INTER_AREA)
        else:
            small = grey_thumbnail(image, self.width)
        small = cv2.GaussianBlur(small, (3, 3), 0)
        prev, self._prev = self._prev, small
        if prev is None or prev.shape != small.shape:
            return 0.0
        return float(np.count_nonzero(cv2.absdiff(small, prev) > self.pixel_delta)) / small.size

    def changed(self, image: np.ndarray, grey: np.ndarray | None = None) -> bool:
        return self.fraction(image, grey) >= self.min_fraction

    def reset(self) -> None:
        self._prev = None
