"""Two-line (square) plates: read the rows apart and join them when that is more probable.

The OCR model sees a crop stretched to 128x64; a square plate's two rows then come out
squashed and it reads them poorly (23% exact on 472 two-line plates made from real US crops,
``scripts/eval_accuracy.py``). Each row alone, padded out to the model's aspect, reads like
a one-line plate (60%, +4 ms per square plate on 2 CPU cores). The joined read replaces the
whole one only when its probability (the product of both rows') is higher, so one-line plates
that look square lose nothing.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from engine.ocr.process import OcrConfig, OcrRead, decode

__all__ = ["TWO_LINE_MAX_ASPECT", "row_crops", "join_rows"]

# Width / height of the detector box below which a plate may have two rows: one-line plates
# are ~2:1 (US) to ~4.7:1 (EU), two-line ones ~1:1 to 1.4:1.
TWO_LINE_MAX_ASPECT = 1.6
_OVERLAP = 0.04  # of the crop height, so a row cut a little high or low keeps its strokes


def _widen(row: np.ndarray, aspect: float) -> np.ndarray:
    """Pad a row out to the model's aspect with its own edge pixels (not stretched)."""
    h, w = row.shape[:2]
    width = int(round(h * aspect))
    if width <= w:
        return row
    left = (width - w) // 2
    return cv2.copyMakeBorder(row, 0, 0, left, width - w - left, cv2.BORDER_REPLICATE)


def row_crops(crop: np.ndarray, cfg: OcrConfig) -> tuple[np.ndarray, np.ndarray]:
    """The top and bottom halves of a plate crop, each shaped like a one-line plate."""
    h = crop.shape[0]
    overlap = max(1, int(round(h * _OVERLAP)))
    aspect = cfg.img_width / cfg.img_height
    top = crop[: h // 2 + overlap]
    bottom = crop[max(0, h // 2 - overlap) :]
    return _widen(top, aspect), _widen(bottom, aspect)


def _rows(probs: np.ndarray, pad: int) -> np.ndarray:
    return probs[probs.argmax(-1) != pad]


def join_rows(
    whole: OcrRead, top: OcrRead, bottom: OcrRead, cfg: OcrConfig, *, beam: int = 8
) -> OcrRead:
    """``top + bottom`` as one read when it is more probable than ``whole``, else ``whole``.

    The joined read keeps the whole plate's region (the region head sees the whole plate)
    and its per-slot probabilities are the rows' character slots, then padding, so region
    formats apply to it as to any read.
    """
    joined_score = top.score * bottom.score
    if not top.text or not bottom.text or joined_score <= whole.score:
        return whole
    pad = cfg.alphabet.index(cfg.pad_char)
    chars = np.concatenate([_rows(top.probs, pad), _rows(bottom.probs, pad)])
    if len(chars) > cfg.max_slots:
        return whole
    padding = np.zeros((cfg.max_slots - len(chars), len(cfg.alphabet)), chars.dtype)
    padding[:, pad] = 1.0
    read = decode(np.concatenate([chars, padding])[None], None, cfg, beam=beam)[0]
    # the rows' padding probabilities count too, so the score compares with whole.score
    cands = tuple((t, s * joined_score / max(read.score, 1e-12)) for t, s in read.candidates)
    return dataclasses.replace(read, score=joined_score, candidates=cands,
                               region=whole.region, region_score=whole.region_score)
