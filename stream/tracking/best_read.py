"""Best read of a track: cluster the reads by text similarity, then a weighted vote.

Like Frigate's LPR: OCR misreads one character now and then, so the reads are grouped by
similarity (rapidfuzz), the group with the largest total weight wins, and inside it the text
with the largest total weight wins; its best read is returned.

A read's weight is its score times how good its plate image was compared with the track's
best: plate width (a far, small plate misreads far more often than the same plate close up)
and sharpness (motion blur) when known. A read from a plate image much smaller than the
track's largest counts for little, so a few early far reads cannot outvote the close-up ones.
Nor does a read of a plate the picture cut (its box touching the edge of what the detector saw):
it may lack characters, and a plate leaving at the bottom of the picture is at its widest just
then (cars.mp4: "34A221" for 34A23126, 0.98, wider than every whole read of it).
"""

from __future__ import annotations

from collections.abc import Sequence

from rapidfuzz import fuzz

from engine import PlateRead

__all__ = ["best_read", "read_weights", "text_support"]

SMALL_FRACTION = 0.7  # a plate narrower than this share of the track's widest is "much smaller"
SMALL_PENALTY = 0.1
EDGE_PENALTY = 0.1  # a read of a plate cut by the picture's edge


def read_weights(reads: Sequence[PlateRead],
                 sharpness: Sequence[float | None] | None = None,
                 at_edge: Sequence[bool] | None = None) -> list[float]:
    """Each read's vote: score x (width / widest)^2, x0.1 when much smaller than the widest,
    x sqrt(sharpness / sharpest) when sharpness is known, x0.1 when the plate touches the
    picture's edge (where every read does, as on a camera framed tight, they stay equals)."""
    widest = max((r.box.width for r in reads), default=1) or 1
    known = [s for s in (sharpness or ()) if s is not None and s > 0]
    sharpest = max(known, default=0.0)
    out = []
    for i, r in enumerate(reads):
        rel = max(1, r.box.width) / widest
        w = r.score * rel * rel
        if rel < SMALL_FRACTION:
            w *= SMALL_PENALTY
        s = sharpness[i] if sharpness is not None else None
        if sharpest > 0 and s is not None:
            w *= (max(s, 0.0) / sharpest) ** 0.5
        if at_edge is not None and at_edge[i]:
            w *= EDGE_PENALTY
        out.append(w + 1e-9)
    return out


def _clusters(order: Sequence[int], reads: Sequence[PlateRead],
              min_ratio: float) -> list[list[int]]:
    clusters: list[list[int]] = []
    for i in order:
        for c in clusters:
            if fuzz.ratio(reads[i].plate, reads[c[0]].plate) >= min_ratio:
                c.append(i)
                break
        else:
            clusters.append([i])
    return clusters


def best_read(reads: Sequence[PlateRead], min_ratio: float = 70.0,
              weights: Sequence[float] | None = None) -> PlateRead | None:
    """The read to report for one vehicle, or None when there are no reads.

    Args:
        reads: every read of the track, any order.
        min_ratio: rapidfuzz ``ratio`` (0..100) for two texts to be the same plate.
        weights: each read's vote (default: its score).
    """
    if not reads:
        return None
    wts = list(weights) if weights is not None else [r.score + 1e-9 for r in reads]
    order = sorted(range(len(reads)), key=lambda i: -wts[i])
    clusters = _clusters(order, reads, min_ratio)
    # Ties in weight go to the larger cluster, then to the one with the best single read.
    winner = max(clusters, key=lambda c: (sum(wts[i] for i in c), len(c), wts[c[0]]))
    votes: dict[str, float] = {}
    for i in winner:
        votes[reads[i].plate] = votes.get(reads[i].plate, 0.0) + wts[i]
    text = max(votes, key=lambda t: votes[t])
    i = max((i for i in winner if reads[i].plate == text),
            key=lambda i: (wts[i], reads[i].score, reads[i].dscore))
    return reads[i]


def text_support(reads: Sequence[PlateRead], weights: Sequence[float], text: str) -> float:
    """Total weight of the reads of exactly ``text``."""
    return sum(w for r, w in zip(reads, weights, strict=True) if r.plate == text)
