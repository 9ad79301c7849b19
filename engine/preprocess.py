"""Image preprocessing shared by the detectors: letterboxing."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["Letterbox", "letterbox", "fitted_canvas", "scaled_size", "SCALED_SIZES"]


@dataclass(frozen=True, slots=True)
class Letterbox:
    """How a frame was placed on the canvas: ``frame = (canvas - pad) / ratio``."""

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
    bgr: np.ndarray, size: int, *, centered: bool, pad_value: int = PAD_VALUE,
    canvas: tuple[int, int] | None = None,
) -> tuple[np.ndarray, Letterbox]:
    """Resize ``bgr`` so that it fits ``size``×``size`` keeping its aspect ratio, and pad it.

    Args:
        bgr: (h, w, 3) uint8.
        centered: pad equally on both sides (YOLOv9 recipe, round() sizes) or paste at the
            top-left corner (YOLOX recipe, int() sizes).
        canvas: (height, width) of the padded result, at least the resized image (see
            ``fitted_canvas``); default the ``size``×``size`` square.

    Returns:
        The (height, width, 3) uint8 canvas and the transform back to frame pixels.
    """
    ch, cw = canvas or (size, size)
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
        dw, dh = (cw - new_w) / 2, (ch - new_h) / 2
        top, left = round(dh - 0.1), round(dw - 0.1)
        bottom, right = ch - new_h - top, cw - new_w - left
        canvas = cv2.copyMakeBorder(
            resized, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(pad_value,) * 3
        )
        return canvas, Letterbox(r, dw, dh)
    out = np.full((ch, cw, 3), pad_value, np.uint8)
    out[:new_h, :new_w] = resized
    return out, Letterbox(r, 0.0, 0.0)


# Short sides a fitted canvas may have, as fractions of the long one: 16:9 (and wider), 4:3,
# square. Few shapes keep the sessions per detector few (one per shape, ~1 s to make each).
FITTED_SIDES = (256 / 416, 320 / 416, 1.0)


def fitted_canvas(h: int, w: int, size: int, stride: int = 32) -> tuple[int, int]:
    """The smallest (height, width) canvas that holds an h×w image letterboxed to ``size`` on
    its long side, its short side one of ``FITTED_SIDES`` (multiples of ``stride``):
    (256, 416) for 16:9 at 416, (320, 416) for 4:3, (416, 256) for a 9:16 portrait.

    A detector that sees the frame's own aspect instead of a square does the same work on
    the picture and none on the grey bands (0.6x the pixels for 16:9).
    """
    r = min(size / h, size / w)
    short = min(max(round(h * r), int(h * r)), max(round(w * r), int(w * r)))
    side = next(s for s in (round(f * size / stride) * stride for f in FITTED_SIDES)
                if s >= short)
    return (side, size) if w >= h else (size, side)


# Long sides a detector input may have when an image is detected at a given scale (a part of
# a frame at the frame's scale, say): few, so that the sessions per detector stay few (each
# ~20 MB, int8). 352 is there for the many parts just over 320 (0.74x the pixels of 416).
SCALED_SIZES = (160, 224, 320, 352, 416)


def scaled_size(h: int, w: int, scale: float, size: int = 416) -> int:
    """The long side to letterbox an h×w image to so that it is scaled by at least ``scale``
    (and at most to ``size``): the smallest of ``SCALED_SIZES`` that holds it."""
    want = max(h, w) * scale
    return next((s for s in SCALED_SIZES if s >= want and s <= size), size)
