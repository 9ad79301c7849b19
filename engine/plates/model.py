"""Licence-plate detector: a backend plus the pure functions in ``process``."""

from __future__ import annotations

import numpy as np

from engine.backends import Backend
from engine.plates import process
from engine.types import Detections

__all__ = ["PlateDetector"]


class PlateDetector:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._input = next(iter(backend.inputs()))
        self._output = "output0"

    def detect(self, bgr: np.ndarray, threshold: float = 0.25) -> Detections:
        """Plates in a BGR frame, in frame pixels, best first."""
        x, lb = process.preprocess(bgr)
        out = self.backend.infer({self._input: x})
        raw = out.get(self._output, next(iter(out.values())))
        return process.decode(raw, lb, bgr.shape[1], bgr.shape[0], threshold)
