"""``config.text_formats``: plate text patterns a client gives to guide the read.

Plate Recognizer documents them as regular expressions of the plate's characters, e.g.
``[0-9][0-9][0-9][a-z][a-z]``. The subset read here is what such a pattern needs, one slot
after another: ``[0-9]`` (or ``\\d``) a digit, ``[a-z]`` a letter, ``[a-z0-9]``/``[0-9a-z]``/``.``
(or ``\\w``) either, a literal letter or digit itself, and ``?`` after a slot to make it optional.
Anything else is refused with a message naming the pattern.

A pattern becomes slot classes (``N``, ``L``, ``A``, or one exact character), and the read
under it is the same exact maximisation as the region formats of ``engine.formats``; the
recognizer keeps the best of the region formats and these patterns.
"""

from __future__ import annotations

import itertools
import re
from functools import lru_cache

import numpy as np

from engine.errors import EngineConfigError
from engine.formats import FormatRead, _class_masks

__all__ = ["compile_text_format", "read_with_text_formats"]

MAX_PATTERN_LEN = 64
MAX_EXPANSIONS = 64  # optional slots multiply the variants; bounded

_TOKEN = re.compile(r"\[0-9\]|\[a-z\]|\[a-z0-9\]|\[0-9a-z\]|\\d|\\w|\.|[a-z0-9]|\?",
                    re.IGNORECASE)
_CLASS = {"[0-9]": "N", "\\d": "N", "[a-z]": "L", "[a-z0-9]": "A", "[0-9a-z]": "A",
          "\\w": "A", ".": "A"}


@lru_cache(maxsize=256)
def compile_text_format(pattern: str) -> tuple[tuple[str, ...], ...]:
    """``"[0-9][a-z]?x"`` -> every slot sequence it allows: ``(("N", "L", "=x"), ("N", "=x"))``.

    A slot is ``N``/``L``/``A`` or ``=c`` for the exact character ``c``.

    Raises:
        EngineConfigError: the pattern is not a string of the supported syntax.
    """
    if not isinstance(pattern, str) or not 0 < len(pattern) <= MAX_PATTERN_LEN:
        raise EngineConfigError(
            f"config.text_formats: expected non-empty patterns of at most {MAX_PATTERN_LEN} "
            f"characters, got {pattern!r:.60}")
    body = pattern.strip()
    if body.startswith("^"):
        body = body[1:]
    if body.endswith("$"):
        body = body[:-1]
    slots: list[tuple[str, bool]] = []  # (slot, optional)
    pos = 0
    while pos < len(body):
        m = _TOKEN.match(body, pos)
        if m is None:
            raise EngineConfigError(
                f"config.text_formats: cannot read {pattern!r} at {body[pos:pos + 8]!r} "
                "(supported: [0-9], [a-z], [a-z0-9], '.', letters, digits and '?')")
        tok = m.group(0)
        pos = m.end()
        if tok == "?":
            if not slots or slots[-1][1]:
                raise EngineConfigError(f"config.text_formats: misplaced '?' in {pattern!r}")
            slots[-1] = (slots[-1][0], True)
            continue
        slots.append((_CLASS.get(tok.lower(), "=" + tok.lower()), False))
    if not slots:
        raise EngineConfigError(f"config.text_formats: empty pattern {pattern!r}")
    optional = [i for i, (_, opt) in enumerate(slots) if opt]
    variants = []
    for keep in itertools.product((True, False), repeat=len(optional)):
        dropped = {i for i, k in zip(optional, keep, strict=True) if not k}
        variants.append(tuple(s for i, (s, _) in enumerate(slots) if i not in dropped))
        if len(variants) >= MAX_EXPANSIONS:
            break
    return tuple(dict.fromkeys(variants))


def read_with_text_formats(
    probs: np.ndarray, patterns: tuple[str, ...], alphabet: str, pad_char: str
) -> FormatRead | None:
    """Most probable reading that fits one of ``patterns`` (``FormatRead.region`` is empty,
    ``format`` the pattern), or None when none fits the OCR's slot count."""
    slots = probs.shape[0]
    masks = _class_masks(alphabet, pad_char)
    low = alphabet.lower()
    best: FormatRead | None = None
    for pattern in patterns:
        for seq in compile_text_format(pattern):
            if len(seq) > slots:
                continue
            text, score = [], 1.0
            for i, slot in enumerate(seq):
                if slot.startswith("="):
                    idx = low.find(slot[1])
                    if idx < 0:
                        score = 0.0
                        break
                else:
                    idx = int(np.where(masks[slot], probs[i], -1.0).argmax())
                score *= float(probs[i, idx])
                text.append(alphabet[idx])
            if score > 0.0:
                pad = masks["_"]
                for i in range(len(seq), slots):
                    score *= float(np.where(pad, probs[i], -1.0).max())
            if best is None or score > best.score:
                best = FormatRead("".join(text), score, "", pattern)
    return best if best is not None and best.score > 0.0 else None
