"""Licence-plate detector: a backend plus the pure functions in ``process``."""

from __future__ import annotations

import numpy as np

from engine.backends import Backend
from engine.backends.fitted import FittedInputs
from engine.plates import process
from engine.types import Detections

__all__ = ["PlateDetector"]


class PlateDetector:
    """``fitted``: sessions with inputs fitted to each frame's aspect (ONNX Runtime only,
    engine.backends.fitted); without it every frame goes through the square ``backend``."""

    def __init__(self, backend: Backend, fitted: FittedInputs | None = None) -> None:
        self.backend = backend
        self.fitted = fitted
        self._input = next(iter(backend.inputs()))
        self._output = "output0"

    def detect(self, bgr: np.ndarray, threshold: float = 0.25) -> Detections:
        """Plates in a BGR frame, in frame pixels, best first."""
        backend, canvas = self.backend, None
        if self.fitted is not None:
            canvas, backend = self.fitted.for_frame(*bgr.shape[:2])
        x, lb = process.preprocess(bgr, canvas)
        out = backend.infer({self._input: x})
        raw = out.get(self._output, next(iter(out.values())))
        return process.decode(raw, lb, bgr.shape[1], bgr.shape[0], threshold)
