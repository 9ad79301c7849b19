"""Licence-plate detector: a backend plus the pure functions in ``process``."""

from __future__ import annotations

import numpy as np

from engine.backends import Backend
from engine.backends.fitted import FittedInputs
from engine.plates import process
from engine.preprocess import SCALED_SIZES, fitted_canvas, scaled_size
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

    def detect(self, bgr: np.ndarray, threshold: float = 0.25,
               scale: float | None = None) -> Detections:
        """Plates in a BGR frame, in frame pixels, best first.

        ``scale``: letterbox the image by about this much instead of to 416 on its long side
        (the next of ``SCALED_SIZES`` up): a part of a frame detected at the frame's own
        scale, on a smaller input. Fitted inputs only; the square ignores it.
        """
        backend, canvas, size = self.backend, None, process.INPUT_SIZE
        if self.fitted is not None:
            h, w = bgr.shape[:2]
            if scale is not None:
                size = scaled_size(h, w, scale, process.INPUT_SIZE)
            canvas, backend = self.fitted.session(fitted_canvas(h, w, size))
            if max(canvas) != size:  # no fitted copy of that shape: the square, at 416
                size = process.INPUT_SIZE
        x, lb = process.preprocess(bgr, canvas, size)
        out = backend.infer({self._input: x})
        raw = out.get(self._output, next(iter(out.values())))
        return process.decode(raw, lb, bgr.shape[1], bgr.shape[0], threshold)

    def prepare_scaled(self, h: int, w: int) -> int:
        """Make the sessions that parts of an h×w image of its own aspect are detected on at
        each of ``SCALED_SIZES`` (``detect(scale=)``), now rather than on a first call that
        would wait for them; return how many input shapes are ready (0 without fitted
        inputs, which ignore ``scale``)."""
        if self.fitted is None:
            return 0
        shapes = {self.fitted.session(fitted_canvas(h, w, size))[0] for size in SCALED_SIZES}
        return len(shapes)
