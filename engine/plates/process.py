"""Pure pre/post-processing of the YOLOv9-t end-to-end plate detector (see models README §1)."""

from __future__ import annotations

import cv2
import numpy as np

from engine.preprocess import Letterbox, letterbox
from engine.types import Detections

__all__ = ["INPUT_SIZE", "preprocess", "decode"]

INPUT_SIZE = 416


def preprocess(
    bgr: np.ndarray, canvas: tuple[int, int] | None = None, size: int = INPUT_SIZE
) -> tuple[np.ndarray, Letterbox]:
    """(h, w, 3) BGR uint8 -> (1, 3, H, W) float32 RGB 0..1, centred letterbox to ``size`` on
    the long side; H×W is ``canvas`` (see engine.preprocess.fitted_canvas), 416×416 by
    default."""
    canvas, lb = letterbox(bgr, size, centered=True, canvas=canvas)
    # the same floats as canvas[:, :, ::-1].transpose(2, 0, 1) / 255, in a third of the time
    return cv2.dnn.blobFromImage(canvas, 1.0 / 255.0, swapRB=True), lb


def decode(
    out: np.ndarray, lb: Letterbox, width: int, height: int, threshold: float
) -> Detections:
    """``output0`` rows ``[batch, x1, y1, x2, y2, class, score]`` -> frame-pixel Detections.

    Boxes are clipped to the frame; degenerate boxes (zero width or height) are dropped.
    Sorted by score, best first.
    """
    out = np.asarray(out, np.float32).reshape(-1, 7)
    keep = out[:, 6] >= threshold
    out = out[keep]
    if not len(out):
        return Detections.empty()
    xyxy = lb.to_frame(out[:, 1:5])
    xyxy[:, 0::2] = np.clip(xyxy[:, 0::2], 0, width)
    xyxy[:, 1::2] = np.clip(xyxy[:, 1::2], 0, height)
    ok = (xyxy[:, 2] - xyxy[:, 0] >= 2) & (xyxy[:, 3] - xyxy[:, 1] >= 2)
    dets = Detections(xyxy[ok], out[ok, 6].copy(), out[ok, 5].astype(np.int32))
    return dets[np.argsort(-dets.score, kind="stable")]
