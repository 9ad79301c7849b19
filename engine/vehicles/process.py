"""Pure pre/post-processing of the YOLOX-Nano COCO detector (see models README §3)."""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from engine.preprocess import Letterbox, letterbox
from engine.types import Detections

__all__ = ["INPUT_SIZE", "VEHICLE_CLASS_IDS", "preprocess", "decode", "nms"]

INPUT_SIZE = 416
STRIDES = (8, 16, 32)
VEHICLE_CLASS_IDS = (2, 3, 5, 7)  # COCO car, motorcycle, bus, truck


def preprocess(
    bgr: np.ndarray, canvas: tuple[int, int] | None = None
) -> tuple[np.ndarray, Letterbox]:
    """(h, w, 3) BGR uint8 -> (1, 3, H, W) float32 BGR 0..255, top-left letterbox; H×W is
    ``canvas`` (see engine.preprocess.fitted_canvas), 416×416 by default."""
    canvas, lb = letterbox(bgr, INPUT_SIZE, centered=False, canvas=canvas)
    return np.ascontiguousarray(canvas.transpose(2, 0, 1)[None], dtype=np.float32), lb


@lru_cache(maxsize=16)
def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    grids, strides = [], []
    for s in STRIDES:
        xv, yv = np.meshgrid(np.arange(w // s), np.arange(h // s))
        grids.append(np.stack((xv, yv), 2).reshape(-1, 2))
        strides.append(np.full((xv.size, 1), s))
    return np.concatenate(grids).astype(np.float32), np.concatenate(strides).astype(np.float32)


def nms(xyxy: np.ndarray, score: np.ndarray, iou: float) -> np.ndarray:
    """Indices kept by greedy NMS, best first."""
    if not len(score):
        return np.empty((0,), np.int64)
    xywh = np.c_[xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]]
    keep = cv2.dnn.NMSBoxes(xywh.tolist(), score.tolist(), 0.0, iou)
    return np.asarray(keep, np.int64).reshape(-1)


def decode(
    out: np.ndarray,
    lb: Letterbox,
    width: int,
    height: int,
    threshold: float,
    classes: tuple[int, ...] = VEHICLE_CLASS_IDS,
    iou: float = 0.45,
    canvas: tuple[int, int] = (INPUT_SIZE, INPUT_SIZE),
) -> Detections:
    """Raw grid predictions (1, 3549, 85) -> vehicles in frame pixels, best first
    (``canvas``: the input's height and width, which the grid follows).

    NMS is class-agnostic over ``classes`` because YOLOX often reports the same car both
    as ``car`` and as ``truck``; each kept box takes its best class.
    """
    p = np.asarray(out, np.float32).reshape(-1, 85)
    cls_scores = p[:, 4:5] * p[:, 5:][:, list(classes)]
    best = cls_scores.argmax(1)
    score = cls_scores[np.arange(len(p)), best]
    keep = score >= threshold
    if not keep.any():
        return Detections.empty()
    g, st = _grid(*canvas)
    p, score, best = p[keep], score[keep], best[keep]
    cxy = (p[:, :2] + g[keep]) * st[keep]
    wh = np.exp(p[:, 2:4]) * st[keep]
    xyxy = lb.to_frame(np.c_[cxy - wh / 2, cxy + wh / 2])
    xyxy[:, 0::2] = np.clip(xyxy[:, 0::2], 0, width)
    xyxy[:, 1::2] = np.clip(xyxy[:, 1::2], 0, height)
    idx = nms(xyxy, score, iou)
    return Detections(
        xyxy[idx], score[idx].astype(np.float32), np.asarray(classes, np.int32)[best[idx]]
    )
