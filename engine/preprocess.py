"""Image preprocessing shared by the detectors: letterboxing."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["Letterbox", "letterbox"]


@dataclass(frozen=True, slots=True)
class Letterbox:
    """How a frame was placed on the square canvas: ``frame = (canvas - pad) / ratio``."""

    ratio: float
    pad_x: float
    pad_y: float

    def to_frame(self, xyxy: np.ndarray) -> np.ndarray:
        """(n, 4) canvas boxes -> (n, 4) frame boxes (float32, not clipped)."""
        out = xyxy.astype(np.float32, copy=True)
        out[:, [0, 2]] -= self.pad_x
        out[:, [1, 3]] -= self.pad_y
        out /= self.ratio
        return out


# The grey both detectors were trained to see around a letterboxed image.
PAD_VALUE = 114


def letterbox(
    bgr: np.ndarray, size: int, *, centered: bool, pad_value: int = PAD_VALUE
) -> tuple[np.ndarray, Letterbox]:
    """Resize ``bgr`` to fit a ``size``×``size`` canvas keeping aspect ratio.

    Args:
        bgr: (h, w, 3) uint8.
        centered: pad equally on both sides (YOLOv9 recipe, round() sizes) or paste at the
            top-left corner (YOLOX recipe, int() sizes).

    Returns:
        The (size, size, 3) uint8 canvas and the transform back to frame pixels.
    """
    h, w = bgr.shape[:2]
    r = min(size / h, size / w)
    if centered:
        new_w, new_h = round(w * r), round(h * r)
    else:
        new_w, new_h = int(w * r), int(h * r)
    resized = bgr if (new_w, new_h) == (w, h) else cv2.resize(
        bgr, (new_w, new_h), interpolation=cv2.INTER_LINEAR
    )
    if centered:
        dw, dh = (size - new_w) / 2, (size - new_h) / 2
        top, left = round(dh - 0.1), round(dw - 0.1)
        bottom, right = size - new_h - top, size - new_w - left
        canvas = cv2.copyMakeBorder(
            resized, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(pad_value,) * 3
        )
        return canvas, Letterbox(r, dw, dh)
    canvas = np.full((size, size, 3), pad_value, np.uint8)
    canvas[:new_h, :new_w] = resized
    return canvas, Letterbox(r, 0.0, 0.0)
