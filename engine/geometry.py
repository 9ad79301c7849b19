"""Box geometry shared by the engine, the stream and the evaluation scripts.

A box is ``[x1, y1, x2, y2]`` in pixels: a sequence, an array row or ``Box.xyxy``; ``boxes`` an
(n, 4) array. Values are used as given (no dtype conversion), so float32 detector boxes are
computed in float32 as the detectors produce them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["intersection", "iou", "coverage", "crop_box", "crop"]


def intersection(box: Sequence[Any], boxes: Any) -> np.ndarray:
    """Area shared by ``box`` and each of ``boxes``, shape (n,)."""
    x1, y1, x2, y2 = box[0], box[1], box[2], box[3]
    b = np.asarray(boxes).reshape(-1, 4)
    ix = np.clip(np.minimum(b[:, 2], x2) - np.maximum(b[:, 0], x1), 0, None)
    iy = np.clip(np.minimum(b[:, 3], y2) - np.maximum(b[:, 1], y1), 0, None)
    return ix * iy


def iou(box: Sequence[Any], boxes: Any) -> np.ndarray:
    """Intersection over union of ``box`` with each of ``boxes`` (0 where the union is 0)."""
    b = np.asarray(boxes).reshape(-1, 4)
    inter = intersection(box, b)
    union = (box[2] - box[0]) * (box[3] - box[1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = union - inter
    dtype = np.result_type(inter.dtype, union.dtype, np.float16)  # float32 stays float32
    return np.divide(inter, union, out=np.zeros(inter.shape, dtype), where=union > 0)


def coverage(box: Sequence[Any], boxes: Any) -> np.ndarray:
    """The fraction of ``box`` inside each of ``boxes`` (its area counted as >= 1 px)."""
    return intersection(box, boxes) / max(1, (box[2] - box[0]) * (box[3] - box[1]))


def crop_box(width: int, height: int, box: Sequence[Any], pad_x: float = 0.0,
             pad_y: float = 0.0) -> tuple[int, int, int, int]:
    """``box`` grown by ``pad_x``/``pad_y`` of its width/height on each side, in whole pixels
    clamped to a ``width`` x ``height`` image and never empty: ``(left, top, right, bottom)``."""
    x1, y1, x2, y2 = box[0], box[1], box[2], box[3]
    bw, bh = x2 - x1, y2 - y1
    left = int(max(0, min(width - 1, np.floor(x1 - pad_x * bw))))
    top = int(max(0, min(height - 1, np.floor(y1 - pad_y * bh))))
    right = int(max(left + 1, min(width, np.ceil(x2 + pad_x * bw))))
    bottom = int(max(top + 1, min(height, np.ceil(y2 + pad_y * bh))))
    return left, top, right, bottom


def crop(image: np.ndarray, box: Sequence[Any], pad_x: float = 0.0,
         pad_y: float = 0.0) -> np.ndarray:
    """``image`` inside ``crop_box(.., box, pad_x, pad_y)`` (a view, not a copy)."""
    left, top, right, bottom = crop_box(image.shape[1], image.shape[0], box, pad_x, pad_y)
    return image[top:bottom, left:right]
