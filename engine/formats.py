"""Plate formats per region, and reading a plate under them.

A format is a string of slot classes: ``L`` letter, ``N`` digit, ``A`` either. Reading a
plate "under" a format is an exact maximisation over the OCR's per-slot probabilities: each
slot takes its most probable symbol of the allowed class, and the slots after the format's
length must be padding. That fixes O/0, I/1, B/8, S/5 confusions by position instead of by a
hand-made substitution table.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

__all__ = ["FORMATS", "FormatRead", "formats_for", "read_with_formats"]


def _expand(*parts: tuple[str, int, int]) -> tuple[str, ...]:
    """``("L", 1, 3), ("N", 1, 4)`` -> every LN-string with 1-3 letters then 1-4 digits."""
    ranges = [[c * n for n in range(lo, hi + 1)] for c, lo, hi in parts]
    return tuple("".join(p) for p in itertools.product(*ranges) if len("".join(p)) <= 10)


_NL_SIDECODES = (
    "LLNNNN", "NNNNLL", "NNLLNN", "LLNNLL", "LLLLNN", "NNLLLL", "NNLLLN", "NLLLNN",
    "LLNNNL", "LNNNLL", "LLLNNL", "NLLNNN", "NNNLLN",
)

# Region code -> formats. A state code (``us-ca``) is looked up first, then its country.
FORMATS: dict[str, tuple[str, ...]] = {
    "br": ("LLLNNNN", "LLLNLNN"),                 # old grey plates, Mercosur
    "us-ca": ("NLLLNNN",),
    "us-ny": ("LLLNNNN",),
    "us-tx": ("LLLNNNN", "LLNLNNN"),
    "us-pa": ("LLLNNNN",),
    "us-ga": ("LLLNNNN", "NNNNLLL"),
    "us-nc": ("LLLNNNN",),
    "us-oh": ("LLLNNNN",),
    "us-va": ("LLLNNNN",),
    "us-wa": ("LLLNNNN", "NLLLNNN"),
    "us-az": ("LLLNNNN",),
    "us-il": ("LLNNNNN", "LNNNNNN"),
    "us-nj": ("LNNLLL", "LLLNNL"),
    "gb": ("LLNNLLL",),
    "ie": _expand(("N", 2, 3), ("L", 1, 2), ("N", 1, 6)),
    "fr": ("LLNNNLL",),
    "it": ("LLNNNLL",),
    "es": ("NNNNLLL",),
    "pt": ("NNLLNN", "LLNNLL", "NNNNLL", "LLNNNN"),
    "be": ("NLLLNNN",),
    "nl": _NL_SIDECODES,
    "de": _expand(("L", 1, 3), ("L", 1, 2), ("N", 1, 4)),
    "at": _expand(("L", 1, 2), ("A", 3, 6)),
    "ch": _expand(("L", 2, 2), ("N", 1, 6)),
    "pl": ("LLNNNNN", "LLNNNLL", "LLLNNNN", "LLLNNLL", "LLNLNNN", "LLLNLNN"),
    "cz": ("NLNNNNN", "NLLNNNN"),
    "sk": ("LLNNNLL",),
    "hu": ("LLLNNN", "LLLLNNN"),
    "ro": ("LLNNLLL", "LNNLLL", "LNNNLLL"),
    "se": ("LLLNNN", "LLLNNL"),
    "no": ("LLNNNNN",),
    "dk": ("LLNNNNN",),
    "fi": ("LLLNNN", "LLNNN"),
    "vn": ("NNLNNNNN", "NNLNNNN", "NNLLNNNNN"),
}

# A reading that fits a requested region's format replaces the unconstrained one when it is
# at least this fraction as probable (a vanity plate that fits nothing keeps its own read).
FORMAT_MIN_RATIO = 0.02


@dataclass(frozen=True, slots=True)
class FormatRead:
    """The best reading under one region's formats."""

    text: str
    score: float
    region: str
    format: str

    def beats(self, unconstrained_score: float) -> bool:
        """Whether this reading should replace the OCR's own (see FORMAT_MIN_RATIO)."""
        return self.score >= unconstrained_score * FORMAT_MIN_RATIO


def formats_for(region: str) -> tuple[str, ...]:
    return FORMATS.get(region) or FORMATS.get(region.split("-")[0], ())


@lru_cache(maxsize=4)  # one alphabet per OCR model: built once, not per plate
def _class_masks(alphabet: str, pad_char: str) -> dict[str, np.ndarray]:
    digit = np.array([c.isdigit() for c in alphabet])
    letter = np.array([c.isalpha() for c in alphabet])
    pad = np.array([c == pad_char for c in alphabet])
    return {"N": digit, "L": letter, "A": digit | letter, "_": pad}


def read_with_formats(
    probs: np.ndarray, regions: tuple[str, ...], alphabet: str, pad_char: str
) -> FormatRead | None:
    """Most probable reading that fits one of the formats of ``regions``.

    Args:
        probs: (slots, len(alphabet)) per-slot softmax of one plate.

    Returns:
        The best fitting text and its probability (product over all slots), or None when no
        requested region has formats.
    """
    slots = probs.shape[0]
    fitting = [(r, f) for r in regions for f in formats_for(r) if len(f) <= slots]
    if not fitting:  # most plates: no hint, or a region without formats
        return None
    # best symbol and its probability for every slot and class, computed once
    best = {}
    for cls, mask in _class_masks(alphabet, pad_char).items():
        masked = np.where(mask, probs, -1.0)
        idx = masked.argmax(1)
        best[cls] = (idx, masked[np.arange(slots), idx])
    result: FormatRead | None = None
    for region, fmt in fitting:
        classes = fmt + "_" * (slots - len(fmt))
        score = float(np.prod([best[c][1][i] for i, c in enumerate(classes)]))
        if result is None or score > result.score:
            text = "".join(alphabet[best[c][0][i]] for i, c in enumerate(fmt))
            result = FormatRead(text, score, region, fmt)
    return result
