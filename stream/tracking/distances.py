"""Distances between a new plate detection and a tracked plate, by name (norfair callables).

A detection's points are its box corners ``[[x1, y1], [x2, y2]]`` and its ``data`` an
Observation. Distances are in plate widths of the *smaller* of the two plates, plus a penalty
for a change of size: a plate grows or shrinks a little from frame to frame, so a close-up
plate (wide) must not match whatever appears within a few of its own widths, and a small far
plate is not the same object as a large near one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from rapidfuzz import fuzz

__all__ = ["DISTANCES", "get_distance", "plate_center", "plate_center_text"]

SIZE_PENALTY = 2.0  # per unit of |ln(width ratio)|: a 2x jump in size costs ~1.4 plate widths


def _width(det: Any) -> float:
    return float(max(8.0, det.points[1, 0] - det.points[0, 0]))


def plate_center(det: Any, obj: Any) -> float:
    """Centre distance to the tracked plate's predicted centre in plate widths (the smaller
    plate's), plus the size-change penalty."""
    wd, wo = _width(det), _width(obj.last_detection)
    d = float(np.linalg.norm(det.points.mean(0) - obj.estimate.mean(0)))
    return d / min(wd, wo) + SIZE_PENALTY * abs(math.log(wd / wo))


def plate_center_text(det: Any, obj: Any) -> float:
    """``plate_center`` plus up to 1.0 when the texts differ (two plates side by side)."""
    a, b = det.data.read.plate, obj.last_detection.data.read.plate
    return plate_center(det, obj) + (1.0 - fuzz.ratio(a, b) / 100.0)


DISTANCES: dict[str, Callable[[Any, Any], float]] = {
    "plate_center": plate_center,
    "plate_center_text": plate_center_text,
}


def get_distance(name: str) -> Callable[[Any, Any], float]:
    try:
        return DISTANCES[name]
    except KeyError:
        raise ValueError(
            f"Invalid distance '{name}', expecting one of {', '.join(DISTANCES)}"
        ) from None
