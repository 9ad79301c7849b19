"""Best read of a track: cluster the reads by text similarity, then a score-weighted vote.

Like Frigate's LPR: OCR misreads one character now and then, so the reads are grouped by
similarity (rapidfuzz), the group with the largest total score wins, and inside it the text with
the largest total score wins; its most confident read is returned.
"""

from __future__ import annotations

from collections.abc import Sequence

from rapidfuzz import fuzz

from engine import PlateRead

__all__ = ["best_read"]


def best_read(reads: Sequence[PlateRead], min_ratio: float = 70.0) -> PlateRead | None:
    """The read to report for one vehicle, or None when there are no reads.

    Args:
        reads: every read of the track, any order.
        min_ratio: rapidfuzz ``ratio`` (0..100) for two texts to be the same plate.
    """
    if not reads:
        return None
    clusters: list[list[PlateRead]] = []
    for r in sorted(reads, key=lambda r: -r.score):
        for c in clusters:
            if fuzz.ratio(r.plate, c[0].plate) >= min_ratio:
                c.append(r)
                break
        else:
            clusters.append([r])
    # Ties in weight go to the larger cluster, then to the one with the best single read.
    winner = max(clusters, key=lambda c: (sum(r.score for r in c), len(c), c[0].score))
    votes: dict[str, float] = {}
    for r in winner:
        votes[r.plate] = votes.get(r.plate, 0.0) + r.score + 1e-6
    text = max(votes, key=lambda t: votes[t])
    return max((r for r in winner if r.plate == text), key=lambda r: (r.score, r.dscore))
