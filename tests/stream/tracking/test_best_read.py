"""best_read: clusters by similarity, then a score-weighted vote (table-driven)."""

from __future__ import annotations

import pytest

from engine import Box, PlateRead, Region
from stream.tracking import RecentPlates, best_read


def read(text: str, score: float, dscore: float = 0.8) -> PlateRead:
    return PlateRead(Box(0, 0, 10, 5), text, score, dscore, Region("", 0.0))


@pytest.mark.parametrize(("reads", "expected"), [
    ([], None),
    ([("abc123", 0.9)], "abc123"),
    # Many consistent reads beat one more confident misread of the same plate.
    ([("89c20339", 0.8), ("89c20339", 0.7), ("89c20338", 0.95)], "89c20339"),
    # Truck in cars.mp4: partial and noisy reads around the true text.
    ([("9k27013", 0.0), ("z0333", 0.11), ("89c20339", 0.98), ("9c2033", 0.43),
      ("9c20339", 0.88), ("29c20331", 0.26), ("29c20339", 0.26), ("19c20339", 0.21)],
     "89c20339"),
    # A low-score junk cluster does not win against the plate.
    ([("ls15ebc", 0.99), ("yt01ncc", 0.0), ("12531", 0.03), ("225bt", 0.03)], "ls15ebc"),
    # Not merely the last read.
    ([("ab12cd", 0.9), ("ab12cd", 0.9), ("xy98zz", 0.5)], "ab12cd"),
])
def test_best_read(reads, expected):
    got = best_read([read(t, s) for t, s in reads])
    assert (got.plate if got else None) == expected


def test_best_read_returns_the_most_confident_read_of_the_winning_text():
    rs = [read("abc123", 0.7, 0.5), read("abc123", 0.9, 0.6), read("abc128", 0.3)]
    assert best_read(rs) is rs[1]


@pytest.mark.parametrize(("events", "expected"), [
    # (plate, ts) -> is_repeat
    ([("34a36837", 0), ("34a36837", 10)], [False, True]),
    ([("34a36837", 0), ("34a36831", 10)], [False, True]),  # one misread char is the same car
    ([("34a36837", 0), ("89c20339", 10)], [False, False]),
    ([("34a36837", 0), ("34a36837", 301)], [False, False]),  # memory decayed
    ([("abc123", 0), ("abc123", 200), ("abc123", 450)], [False, True, True]),  # refreshed
])
def test_recent_plates(events, expected):
    mem = RecentPlates(memory_decay=300, min_ratio=80)
    assert [mem.is_repeat(p, ts) for p, ts in events] == expected
