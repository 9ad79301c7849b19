"""The best read per vehicle under real-time conditions (issue 13): an event sent early (at
max_prediction_delay, plate still far) is corrected when the vehicle's clearly better reads
come in: the same event_id, ``updated: true``, webhook event ``recognition.update`` — never a
second vehicle; repeat suppression (memory_decay) is only for other tracks of the plate."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from engine import Box, PlateRead, Region
from stream.analysis import CameraAnalyzer
from stream.config import CameraConfig
from stream.sources.frames import Frame, FrameSlot
from stream.tracking import Observation, PlateTracker
from stream.wire import stream_webhook as webhook_payload


def _obs(text: str, score: float, width: int, ts: float) -> Observation:
    x = 800 - int(ts * 10)
    read = PlateRead(Box(x, 400, x + width, 400 + width // 3), text, score, 0.9,
                     Region("", 0.0))
    frame = Frame(np.zeros((720, 1280, 3), np.uint8), ts, datetime.now(UTC), ts, 1, 1.0)
    return Observation(read, ts, frame)


def _analyzer(events: list, **cam) -> CameraAnalyzer:
    cfg = CameraConfig(name="gate", url="rtsp://cam/x", max_prediction_delay=2.0,
                       memory_decay=60, **cam)
    return CameraAnalyzer(cfg, FrameSlot(), worker=None, emit=events.append)


def _feed(a: CameraAnalyzer, t: PlateTracker, obs: list[Observation]) -> None:
    for o in obs:
        a._finish(t.update([o], o.ts))


def test_a_far_misread_sent_early_is_corrected_with_the_same_event_id():
    events: list = []
    a, t = _analyzer(events), PlateTracker(max_prediction_delay=2.0, track_timeout=1.5)
    # The far truck: small plate images, misread with confidence, past max_prediction_delay.
    _feed(a, t, [_obs("9c20339", 0.95, 34, 0.1 * i) for i in range(25)])
    assert [e.plate for e in events] == ["9c20339"]
    first = events[0]
    # Closer: the plate image grows, the right text comes in; then the truck leaves.
    _feed(a, t, [_obs("89c20339", 0.97, 54 + i, 2.5 + 0.1 * i) for i in range(8)])
    a._finish(t.update([], 10.0))
    assert [e.plate for e in events] == ["9c20339", "89c20339"]
    fix = events[1]
    assert fix.id == first.id and fix.data["event_id"] == first.data["event_id"]
    assert fix.data["updated"] is True and "updated" not in first.data
    assert webhook_payload(fix.data, "http://x/")["hook"]["event"] == "recognition.update"
    assert webhook_payload(first.data, "http://x/")["hook"]["event"] == "recognition"
    assert (a.stats.events, a.stats.updates, a.stats.repeats) == (1, 1, 0)

    # The same truck seen again by another track within memory_decay: a repeat, no event.
    _feed(a, t, [_obs("89c20339", 0.97, 60, 12.0 + 0.1 * i) for i in range(5)])
    a._finish(t.update([], 20.0))
    assert len(events) == 2 and a.stats.repeats == 1


def test_no_correction_when_the_early_read_stands():
    events: list = []
    a, t = _analyzer(events), PlateTracker(max_prediction_delay=2.0, track_timeout=1.5)
    _feed(a, t, [_obs("89c20339", 0.95, 40 + i // 5, 0.1 * i) for i in range(30)])
    # One odd read of a larger image does not outweigh the rest.
    _feed(a, t, [_obs("89c20338", 0.9, 50, 3.1)])
    a._finish(t.update([], 10.0))
    assert [e.plate for e in events] == ["89c20339"] and a.stats.updates == 0


def test_a_track_first_suppressed_as_a_repeat_is_an_event_when_its_plate_is_another():
    events: list = []
    a, t = _analyzer(events), PlateTracker(max_prediction_delay=2.0, track_timeout=1.5)
    _feed(a, t, [_obs("ab12cde", 0.95, 60, 0.1 * i) for i in range(5)])
    a._finish(t.update([], 5.0))
    # Another vehicle whose far reads look like the first plate, then read right up close.
    _feed(a, t, [_obs("ab12cdf", 0.6, 30 + i // 2, 6.0 + 0.1 * i) for i in range(25)])
    assert len(events) == 1 and a.stats.repeats == 1
    _feed(a, t, [_obs("xy98zzq", 0.7, 44 + 3 * i, 8.6 + 0.1 * i) for i in range(10)])
    (track,) = t.update([], 20.0)  # one track all along (no confident split)
    a._finish([track])
    assert [e.plate for e in events] == ["ab12cde", "xy98zzq"]
    assert "updated" not in events[1].data


def test_frames_in_flight_are_applied_in_order(tmp_path, evaldata, engine_worker):
    """max_inflight frames of one camera in the engine at once; the track still sees them in
    frame order (direction and best read are the same as one at a time)."""
    from pathlib import Path

    from stream.pipeline import Pipeline
    from tests.stream.helpers import make_config, read_jsonl, wait_for

    out = {}
    for n in (1, 2):
        (tmp_path / f"n{n}").mkdir()
        cfg = make_config(tmp_path / f"n{n}", {
            "cameras": {"street": {"url": str(evaldata / "videos" / "license_plate.mp4"),
                                   "realtime": False, "sample": 4, "max_inflight": n,
                                   "outputs": ["jsonl"]}},
            "outputs": {"jsonl": {"type": "jsonl", "file": "{camera_id}.jsonl"}},
        })
        with Pipeline(cfg, engine_worker) as p:
            assert wait_for(p.done, 120), p.status()
            assert p.wait_delivered(30)
            cam = p.status()["cameras"]["street"]
        assert cam["inflight_peak"] == n, cam
        assert cam["frames_analysed"] == 35, cam
        out[n] = read_jsonl(Path(cfg.output_dir) / "street.jsonl")
    for n in (1, 2):
        (ev,) = out[n]
        assert ev["results"][0]["plate"] == "ls15ebc"
    assert out[1][0]["results"][0]["direction"] == out[2][0]["results"][0]["direction"]
    assert out[1][0]["results"][0]["position_sec"] == out[2][0]["results"][0]["position_sec"]
