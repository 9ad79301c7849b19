"""Pure pre/post-processing of the fast-plate-ocr CCT model (see models README §2)."""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["OcrConfig", "OcrRead", "preprocess", "decode", "beam_candidates"]


@dataclass(frozen=True, slots=True)
class OcrConfig:
    """The model's YAML: alphabet, padding symbol, input size and region labels."""

    alphabet: str
    pad_char: str
    max_slots: int
    img_height: int
    img_width: int
    regions: tuple[str, ...]


@dataclass(frozen=True, slots=True, eq=False)
class OcrRead:
    """One plate read.

    Attributes:
        text: uppercase alphanumerics, padding removed.
        char_scores: probability of each character of ``text``.
        score: probability of the whole read: product over all slots (padding included).
        candidates: ``(text, score)`` alternatives, best first; the first is ``text``.
        region: region label from the model's list, and its probability.
        probs: (slots, len(alphabet)) the per-slot probabilities the read came from.
    """

    text: str
    char_scores: tuple[float, ...]
    score: float
    candidates: tuple[tuple[str, float], ...]
    region: str
    region_score: float
    probs: np.ndarray


def preprocess(crops: list[np.ndarray], cfg: OcrConfig) -> np.ndarray:
    """BGR crops -> (n, H, W, 3) uint8 RGB, stretched to the model size (no aspect kept)."""
    batch = np.empty((len(crops), cfg.img_height, cfg.img_width, 3), np.uint8)
    for i, crop in enumerate(crops):
        resized = cv2.resize(crop, (cfg.img_width, cfg.img_height), interpolation=cv2.INTER_LINEAR)
        cv2.cvtColor(resized, cv2.COLOR_BGR2RGB, dst=batch[i])
    return batch


def beam_candidates(
    probs: np.ndarray, alphabet: str, pad_char: str, *, beam: int = 8, per_slot: int = 3
) -> list[tuple[str, float]]:
    """Most probable plate strings from per-slot probabilities.

    Args:
        probs: (slots, len(alphabet)) softmax rows.
        beam: how many strings to keep (and return, at most).
        per_slot: alternatives considered per slot.

    Returns:
        ``(text, probability)`` best first, the probability being the product over slots.
        Strings that differ only by padding are merged (max probability); padding in the
        middle of a string is removed, as the model pads only at the end when it is sure.
    """
    top = np.argsort(-probs, axis=1)[:, :per_slot]
    beams: list[tuple[float, str]] = [(1.0, "")]
    for slot, choices in enumerate(top):
        grown = [
            (p * float(probs[slot, c]), s + alphabet[c]) for p, s in beams for c in choices
        ]
        beams = heapq.nlargest(beam, grown)
    merged: dict[str, float] = {}
    for p, s in beams:
        text = s.replace(pad_char, "")
        if text and p > merged.get(text, 0.0):
            merged[text] = p
    return sorted(merged.items(), key=lambda kv: -kv[1])


def decode(
    plate_probs: np.ndarray, region_probs: np.ndarray | None, cfg: OcrConfig, *, beam: int = 8
) -> list[OcrRead]:
    """Model outputs -> one OcrRead per crop.

    Args:
        plate_probs: (n, slots, len(alphabet)).
        region_probs: (n, len(regions)) or None for models without a region head.
    """
    reads = []
    for i, probs in enumerate(plate_probs):
        idx = probs.argmax(-1)
        best = probs[np.arange(len(idx)), idx]
        chars = [(cfg.alphabet[j], float(p)) for j, p in zip(idx, best, strict=True)]
        kept = [(c, p) for c, p in chars if c != cfg.pad_char]
        text = "".join(c for c, _ in kept)
        cands = beam_candidates(probs, cfg.alphabet, cfg.pad_char, beam=beam) if beam > 1 else []
        score = float(np.prod(best))
        if not cands or cands[0][0] != text:
            cands = [(text, score), *[c for c in cands if c[0] != text]]
        if region_probs is not None and cfg.regions:
            r = int(region_probs[i].argmax())
            region, rscore = cfg.regions[r], float(region_probs[i, r])
        else:
            region, rscore = "Unknown", 0.0
        reads.append(
            OcrRead(text, tuple(p for _, p in kept), score, tuple(cands), region, rscore, probs)
        )
    return reads
