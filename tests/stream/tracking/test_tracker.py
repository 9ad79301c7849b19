"""PlateTracker: reads grouped per vehicle, events due at track end or max_prediction_delay."""

from __future__ import annotations

import pytest

from engine import Box, PlateRead, Region
from stream.tracking import Observation, PlateTracker, direction_degrees


def obs(text: str, x: float, y: float, ts: float, score: float = 0.9, w: int = 80) -> Observation:
    box = Box(round(x), round(y), round(x) + w, round(y) + w // 3)
    return Observation(PlateRead(box, text, score, 0.8, Region("", 0.0)), ts, frame=f"f{ts:.1f}")


def test_one_moving_plate_is_one_track_with_all_reads():
    t = PlateTracker(max_prediction_delay=6, track_timeout=1.0)
    due = []
    for i in range(10):
        due += t.update([obs("abc123" if i != 4 else "abc128", 100 + 30 * i, 300, i * 0.1)],
                        i * 0.1)
    assert due == []
    due += t.update([], 2.0)  # not seen for longer than track_timeout: the track ended
    assert len(due) == 1 and len(due[0].observations) == 10
    assert due[0].best().read.plate == "abc123"
    assert due[0].best().frame is not None  # the best read keeps its frame for the image
    assert due[0].direction() == 0  # moving right
    assert t.update([], 3.0) == []  # reported once


def test_two_plates_side_by_side_are_two_tracks():
    t = PlateTracker(track_timeout=0.5)
    for i in range(5):
        ts = i * 0.1
        t.update([obs("abc123", 100, 300 - 10 * i, ts), obs("xyz789", 600, 300 - 10 * i, ts)], ts)
    due = t.update([], 5.0)
    assert sorted(tr.best().read.plate for tr in due) == ["abc123", "xyz789"]


def test_max_prediction_delay_reports_a_long_track_once():
    t = PlateTracker(max_prediction_delay=2.0, track_timeout=1.0)
    due = []
    for i in range(40):  # a parked car seen for 4 s
        due += t.update([obs("park01", 200, 200, i * 0.1)], i * 0.1)
    assert len(due) == 1 and due[0].first_ts == 0.0 and due[0].last_ts >= 2.0
    assert t.update([], 10.0) == []  # already reported
    assert t.flush() == []


def test_flush_reports_open_tracks():
    t = PlateTracker()
    t.update([obs("abc123", 10, 10, 0.0)], 0.0)
    assert [tr.best().read.plate for tr in t.flush()] == ["abc123"]


def test_only_best_reads_keep_frames():
    t = PlateTracker(track_timeout=0.5)
    for i in range(20):
        t.update([obs("abc123", 100 + 5 * i, 100, i * 0.1, score=0.5 + i / 100)], i * 0.1)
    (track,) = t.update([], 10.0)
    assert sum(o.frame is not None for o in track.observations) == 1
    assert track.best().frame == "f1.9"


@pytest.mark.parametrize(("start", "end", "expected"), [
    ((100, 300), (400, 300), 0),     # right
    ((100, 300), (100, 100), 90),    # up the image
    ((400, 300), (100, 300), 180),   # left
    ((100, 100), (100, 300), 270),   # down (towards the camera)
    ((100, 100), (110, 102), None),  # barely moved
])
def test_direction(start, end, expected):
    a, b = obs("a", *start, 0.0), obs("a", *end, 1.0)
    assert direction_degrees([a.read, b.read]) == expected


def test_invalid_distance_name():
    with pytest.raises(ValueError, match="Invalid distance 'nope', expecting one of"):
        PlateTracker(distance="nope")
