"""Distances between a new plate detection and a tracked plate, by name (norfair callables).

A detection's points are its box corners ``[[x1, y1], [x2, y2]]`` and its ``data`` an
Observation. Distances are in plate widths, so one threshold fits near and far plates.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from rapidfuzz import fuzz

__all__ = ["DISTANCES", "get_distance", "plate_center", "plate_center_text"]


def _width(det: Any) -> float:
    return float(max(8.0, det.points[1, 0] - det.points[0, 0]))


def plate_center(det: Any, obj: Any) -> float:
    """Centre distance to the tracked plate's predicted centre, in plate widths."""
    d = float(np.linalg.norm(det.points.mean(0) - obj.estimate.mean(0)))
    return d / max(_width(det), _width(obj.last_detection))


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
