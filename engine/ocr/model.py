"""Plate OCR: a backend plus the pure functions in ``process``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from engine.backends import Backend
from engine.errors import ModelLoadError
from engine.ocr import process
from engine.ocr.process import OcrConfig, OcrRead
from engine.ocr.two_line import join_rows, row_crops

__all__ = ["PlateOCR", "load_ocr_config"]


def load_ocr_config(path: Path) -> OcrConfig:
    try:
        data = yaml.safe_load(path.read_text())
        return OcrConfig(
            alphabet=str(data["alphabet"]),
            pad_char=str(data["pad_char"]),
            max_slots=int(data["max_plate_slots"]),
            img_height=int(data["img_height"]),
            img_width=int(data["img_width"]),
            regions=tuple(data.get("plate_regions") or ()),
        )
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
        raise ModelLoadError(f"OCR config {path} is not usable: {exc}") from exc


class PlateOCR:
    """Reads plate crops. The batch dimension is free, so many crops share one call.

    Args:
        max_batch: crops per model call (bounds memory on long lists); never more than the
            backend takes (a TensorRT engine is built for at most N images a call).
    """

    def __init__(self, backend: Backend, cfg: OcrConfig, max_batch: int = 32) -> None:
        self.backend = backend
        self.cfg = cfg
        self.max_batch = min(max_batch, getattr(backend, "max_batch", max_batch))
        self._input = next(iter(backend.inputs()))

    def read(self, crops: list[np.ndarray], *, beam: int = 8) -> list[OcrRead]:
        """BGR plate crops -> reads, in the same order."""
        reads: list[OcrRead] = []
        for start in range(0, len(crops), self.max_batch):
            x = process.preprocess(crops[start : start + self.max_batch], self.cfg)
            out = self.backend.infer({self._input: x})
            reads += process.decode(out["plate"], out.get("region"), self.cfg, beam=beam)
        return reads

    def read_plates(
        self, crops: list[np.ndarray], two_line: list[bool], *, beam: int = 8
    ) -> list[OcrRead]:
        """Like ``read``; crops flagged ``two_line`` (square boxes) also have their two rows
        read apart, in the same model call, and joined when that is more probable."""
        extra = [i for i, flag in enumerate(two_line) if flag]
        rows = [r for i in extra for r in row_crops(crops[i], self.cfg)]
        reads = self.read(crops + rows, beam=beam)
        out = reads[: len(crops)]
        for k, i in enumerate(extra):
            top, bottom = reads[len(crops) + 2 * k], reads[len(crops) + 2 * k + 1]
            out[i] = join_rows(out[i], top, bottom, self.cfg, beam=beam)
        return out
