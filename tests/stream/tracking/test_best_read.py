"""best_read: clusters by similarity, then a score-weighted vote (table-driven)."""

from __future__ import annotations

import pytest

from engine import Box, PlateRead, Region
from stream.tracking import RecentPlates, best_read
from stream.tracking.best_read import read_weights


def read(text: str, score: float, dscore: float = 0.8, width: int = 10) -> PlateRead:
    return PlateRead(Box(0, 0, width, width // 2), text, score, dscore, Region("", 0.0))


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


def test_reads_of_a_much_smaller_plate_image_do_not_win():
    """The far truck of cars.mp4 (issue 13): confident misreads of the early, small plate
    images (~36 px) outnumber the right reads of the close ones (~54 px), and must lose."""
    reads = [read("9c20339", 0.95, width=34 + i % 5) for i in range(12)]
    reads += [read("29c20339", 0.9, width=36)]
    reads += [read("89c20339", 0.9, width=52 + i % 4) for i in range(5)]
    assert best_read(reads).plate == "9c20339"  # score alone: the far misread
    assert best_read(reads, weights=read_weights(reads)).plate == "89c20339"


def test_sharpness_weighs_in():
    reads = [read("ab12cde", 0.9, width=50), read("ab12cdf", 0.9, width=50)]
    assert best_read(reads, weights=read_weights(reads, [10.0, 400.0])).plate == "ab12cdf"
    assert best_read(reads, weights=read_weights(reads, [400.0, 10.0])).plate == "ab12cde"


def test_a_plate_cut_by_the_picture_edge_does_not_win():
    """34A23126 of cars.mp4 leaving at the bottom of the picture (frames 125-130, the reads the
    engine gives): the last read, cut by the edge, is the widest; where frames were dropped
    it outvoted the whole reads before it."""
    reads = [read("34a23126", 1.0, width=96), read("34a23126", 1.0, width=100),
             read("34a221", 0.98, width=102), read("34a221", 0.98, width=101)]
    edge = [False, False, True, True]
    assert best_read(reads, weights=read_weights(reads)).plate == "34a221"
    assert best_read(reads, weights=read_weights(reads, at_edge=edge)).plate == "34a23126"
    # a camera framed so that every plate touches the edge: its reads stay equals
    assert read_weights(reads, at_edge=[True] * 4) == pytest.approx(
        [w * 0.1 for w in read_weights(reads)], rel=1e-6)
