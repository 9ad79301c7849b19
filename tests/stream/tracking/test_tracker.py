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
    assert not due[0].ended
    # Due once more when it ends (the caller may then correct its read), never again.
    (end,) = t.update([], 10.0)
    assert end is due[0] and end.ended
    assert t.update([], 11.0) == [] and t.flush() == []


def test_a_confidently_read_other_plate_splits_the_track():
    """A handheld camera: plate B appears where plate A just was (a cut the picture check
    missed); it must start its own track, and A's track ends at once."""
    t = PlateTracker(track_timeout=1.5)
    for i in range(5):
        t.update([obs("ab12cde", 300 + 5 * i, 300, i * 0.1, score=0.95, w=200)], i * 0.1)
    due = t.update([obs("xy98zzz", 330, 300, 0.5, score=0.95, w=200)], 0.5)
    assert [tr.best().read.plate for tr in due] == ["ab12cde"] and due[0].ended
    due = t.update([], 5.0)
    assert [tr.best().read.plate for tr in due] == ["xy98zzz"]
    assert len(due[0].observations) == 1


def test_a_misread_of_the_same_plate_does_not_split():
    t = PlateTracker(track_timeout=1.5)
    for i, text in enumerate(["89c20339", "9c20339", "89c20339", "29c20339", "89c20339"]):
        assert t.update([obs(text, 300 + 5 * i, 300, i * 0.1, score=0.9)], i * 0.1) == []
    (tr,) = t.flush()
    assert len(tr.observations) == 5 and tr.best().read.plate == "89c20339"


def test_a_close_up_plate_does_not_swallow_a_small_one_nearby():
    """Distances are in the smaller plate's widths and a jump in size costs: a 240-px plate
    does not match a 40-px plate 300 px away (it would, in widths of the big plate)."""
    t = PlateTracker(track_timeout=1.5)
    for i in range(3):
        t.update([obs("ab12cde", 400, 400, i * 0.1, score=0.5, w=240)], i * 0.1)
    # another text: a track that broke would be joined at the flush (same plate, just after)
    t.update([obs("xy98zzz", 700, 420, 0.3, score=0.5, w=40)], 0.3)
    tracks = t.flush()
    assert sorted(len(tr.observations) for tr in tracks) == [1, 3]


def test_flush_starts_afresh():
    """After a flush (scene change) a plate at the same place is a new track."""
    t = PlateTracker()
    t.update([obs("abc123", 100, 100, 0.0)], 0.0)
    (a,) = t.flush()
    t.update([obs("abc123", 100, 100, 0.1)], 0.1)
    (b,) = t.flush()
    assert a is not b and a.id != b.id


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


def test_a_far_plate_missed_for_a_few_frames_stays_one_track():
    """Far plates are found on some frames only; the track lives by track_timeout (seconds),
    not by norfair's count of missed frames (a new object used to die after two misses)."""
    t = PlateTracker(track_timeout=1.5)
    t.update([obs("89c20339", 840, 370, 0.0, w=34)], 0.0)
    for i in range(1, 6):
        assert t.update([], i * 0.08) == []
    t.update([obs("9c20339", 836, 374, 0.48, w=35)], 0.48)
    (tr,) = t.update([], 3.0)
    assert len(tr.observations) == 2


def test_a_broken_track_of_the_same_plate_is_joined_not_a_second_vehicle():
    """The red car of cars.mp4 comes out from behind another: a partial read ('23126'),
    then, a few dropped frames later, the whole, larger plate further on — too far to match
    frame to frame, but it began after the first was last seen, nearby, with the same text."""
    t = PlateTracker(track_timeout=1.5)
    for i in range(3):
        assert t.update([obs("23126", 578 - 8 * i, 300, 0.1 * i, score=0.95, w=47)],
                        0.1 * i) == []
    due = []
    for i in range(12):
        ts = 0.5 + 0.1 * i
        due += t.update([obs("34a23126", 470 - 20 * i, 300, ts, score=1.0, w=81 + i)], ts)
    assert due == []  # the first track's end joined the second, nothing reported
    (tr,) = t.update([], 5.0)
    assert len(tr.observations) == 15 and tr.best().read.plate == "34a23126"


def test_a_broken_track_is_joined_at_a_flush_too():
    """The same red car with frames dropped (bench_stream, 8 cameras): 'a23126' at 4.2 s, the
    whole plate from 4.8 s, and a scene cut at 5.6 s flushes both. Reported apart, the partial
    read went first and the whole one was suppressed as its repeat (ratio 86 >= 80)."""
    t = PlateTracker(track_timeout=1.5)
    t.update([obs("a23126", 555, 509, 4.2, score=1.0, w=59)], 4.2)
    t.update([], 4.4)
    for i, ts in enumerate((4.8, 5.0, 5.2)):
        t.update([obs("34a23126", 425 - 40 * i, 595 + 20 * i, ts, score=1.0, w=93 + 2 * i)], ts)
    (tr,) = t.flush()
    assert len(tr.observations) == 4 and tr.best().read.plate == "34a23126"
    # two plates far apart at a cut stay two vehicles
    t.update([obs("ab12cde", 100, 100, 6.0, w=60)], 6.0)
    t.update([obs("kl45mno", 1100, 600, 6.4, w=60)], 6.4)
    assert sorted(tr.best().read.plate for tr in t.flush()) == ["ab12cde", "kl45mno"]


def test_a_track_of_another_plate_that_follows_is_not_joined():
    t = PlateTracker(track_timeout=1.5)
    for i in range(3):
        t.update([obs("ab12cde", 500, 300, 0.1 * i, w=60)], 0.1 * i)
    due = []
    for i in range(20):
        ts = 0.5 + 0.1 * i
        due += t.update([obs("kl45mno", 700, 300, ts, w=60, score=0.6)], ts)
    assert [tr.best().read.plate for tr in due] == ["ab12cde"]
