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

    def read(self, crops: list[np.ndarray], *, beam: int = 8, views: int = 1) -> list[OcrRead]:
        """BGR plate crops -> reads, in the same order. ``views`` > 1: the crops come in
        groups of that many views of one plate, read as one (their probabilities averaged)."""
        plate, region = self._infer(crops)
        return self._decode(plate, region, beam, views)

    def read_plates(
        self, crops: list[np.ndarray], two_line: list[bool], *, beam: int = 8, views: int = 1,
        sure: float | None = None,
    ) -> list[OcrRead]:
        """Like ``read``; plates flagged ``two_line`` (square boxes, one flag per plate) also
        have their two rows read apart (from each view), in the same model call, and joined
        when that is more probable.

        ``sure``: read the first view of each one-line plate alone first and keep that read
        when its score reaches ``sure``; only the other plates are read from all their views
        (exactly as without ``sure``). Most plates are read surely from one view, so this
        costs about one view's time where all views would cost ``views`` times as much.
        """
        if sure is not None and views > 1:
            return self._read_sure_first(crops, two_line, beam, views, sure)
        extra = [i for i, flag in enumerate(two_line) if flag]
        rows = []
        for i in extra:  # top rows of all views, then bottom rows: views stay grouped
            pairs = [row_crops(crops[i * views + v], self.cfg) for v in range(views)]
            rows += [top for top, _ in pairs] + [bottom for _, bottom in pairs]
        plate, region = self._infer(crops + rows)
        n = len(crops)
        out = self._decode(plate[:n], None if region is None else region[:n], beam, views)
        row_reads = self._decode(plate[n:], None if region is None else region[n:], beam,
                                 views)
        for k, i in enumerate(extra):
            top, bottom = row_reads[2 * k], row_reads[2 * k + 1]
            out[i] = join_rows(out[i], top, bottom, self.cfg, beam=beam)
        return out

    def _read_sure_first(self, crops: list[np.ndarray], two_line: list[bool], beam: int,
                         views: int, sure: float) -> list[OcrRead]:
        out: list[OcrRead | None] = [None] * len(two_line)
        single = [i for i, flag in enumerate(two_line) if not flag]
        if single:
            for i, read in zip(single, self.read([crops[i * views] for i in single], beam=beam),
                               strict=True):
                out[i] = read if read.score >= sure else None
        rest = [i for i, read in enumerate(out) if read is None]
        if rest:
            again = self.read_plates([crops[i * views + v] for i in rest for v in range(views)],
                                     [two_line[i] for i in rest], beam=beam, views=views)
            for i, read in zip(rest, again, strict=True):
                out[i] = read
        return [read for read in out if read is not None]  # every plate has its read now

    def _infer(self, crops: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        plates, regions = [], []
        for start in range(0, len(crops), self.max_batch):
            x = process.preprocess(crops[start : start + self.max_batch], self.cfg)
            out = self.backend.infer({self._input: x})
            plates.append(out["plate"])
            if out.get("region") is not None:
                regions.append(out["region"])
        if not plates:
            return np.empty((0, self.cfg.max_slots, len(self.cfg.alphabet)), np.float32), None
        return np.concatenate(plates), np.concatenate(regions) if regions else None

    def _decode(self, plate: np.ndarray, region: np.ndarray | None, beam: int,
                views: int) -> list[OcrRead]:
        if views > 1:
            plate = plate.reshape(-1, views, *plate.shape[1:]).mean(1)
            if region is not None:
                region = region.reshape(-1, views, *region.shape[1:]).mean(1)
        return process.decode(plate, region, self.cfg, beam=beam)
