"""Frame hand-off, backoff, analysis size, and a camera that never connects."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from stream.pipeline import Pipeline
from stream.sources import Backoff, Frame, FrameSlot, SourceEnded
from stream.sources.reader import analysis_size
from tests.stream.helpers import free_port, make_config, read_jsonl, wait_for


def frame(i: int) -> Frame:
    return Frame(np.zeros((2, 2, 3), np.uint8), float(i), datetime.now(UTC), None, i, 1.0)


def test_slot_latest_wins_and_counts_drops():
    slot, stop = FrameSlot(), threading.Event()
    for i in range(5):
        slot.put(frame(i), stop)
    slot.end(SourceEnded("eos", final=False))
    slot.put(frame(9), stop)
    assert slot.get(0.1).index == 4 and slot.dropped == 4
    assert isinstance(slot.get(0.1), SourceEnded)  # markers keep their order
    assert slot.get(0.1).index == 9
    assert slot.get(0.05) is None


def test_blocking_slot_loses_nothing():
    slot, stop = FrameSlot(block=True), threading.Event()
    got = []

    def consume():
        while len(got) < 50:
            item = slot.get(1.0)
            if item is not None:
                got.append(item.index)

    t = threading.Thread(target=consume, name="test:consume")
    t.start()
    for i in range(50):
        slot.put(frame(i), stop)
    t.join(10)
    assert got == list(range(50)) and slot.dropped == 0


def test_backoff_is_capped_and_resets():
    b = Backoff(0.5, 4.0)
    assert [b.next() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    b.reset()
    assert b.next() == 0.5
    with pytest.raises(ValueError, match="0 < initial <= maximum"):
        Backoff(0, 1)


@pytest.mark.parametrize(("size", "max_width", "expected"), [
    ((1920, 1080), 1280, (1280, 720)), ((1280, 720), 1280, (1280, 720)),
    ((640, 480), 1280, (640, 480)), ((1920, 1080), 960, (960, 540)),
])
def test_analysis_size(size, max_width, expected):
    assert analysis_size(*size, max_width) == expected


def test_camera_that_never_connects_does_not_stop_the_others(tmp_path, evaldata,
                                                             engine_worker):
    cfg = make_config(tmp_path, {
        "defaults": {"outputs": ["jsonl"], "timeout": 2, "reconnect_max": 1},
        "cameras": {
            "dead": {"url": f"rtsp://admin:pw@127.0.0.1:{free_port()}/none"},
            "street": {"url": str(evaldata / "videos" / "license_plate.mp4"),
                       "realtime": False, "sample": 3},
        },
        "outputs": {"jsonl": {"type": "jsonl", "file": "{camera_id}.jsonl"}},
    })
    with Pipeline(cfg, engine_worker) as p:
        street = p.cameras["street"].analyzer.finished
        assert wait_for(street.is_set, 90), p.status()
        assert wait_for(lambda: p.status()["cameras"]["dead"]["reconnects"] >= 2, 30)
        dead = p.status()["cameras"]["dead"]
        assert dead["state"] in ("connecting", "reconnecting") and dead["last_error"]
        assert dead["url"] == dead["url"].replace("admin:pw@", "") and "pw" not in dead["url"]
        assert p.wait_delivered(10)
    events = read_jsonl(Path(cfg.output_dir) / "street.jsonl")
    assert [e["results"][0]["plate"] for e in events] == ["ls15ebc"]


def test_bgr_scaler_matches_one_step_conversion(evaldata):
    # scaled in YUV, then converted: the picture FFmpeg's one-step scale-and-convert gives,
    # for a plain yuv420p frame (cars.mp4), one tagged BT.709 full range, and an rgb24 frame
    import av
    from av.video.reformatter import ColorRange, Colorspace

    from stream.sources.reader import BgrScaler

    with av.open(str(evaldata / "videos" / "cars.mp4")) as c:
        frames = [f for i, f in zip(range(12), c.decode(video=0), strict=False) if i % 4 == 0]
    tagged = frames[-1]
    tagged.colorspace, tagged.color_range = Colorspace.ITU709, ColorRange.JPEG
    frames.append(tagged.reformat(format="rgb24"))
    to_bgr = BgrScaler()
    for frame in frames:
        for w, h in ((960, 540), (1280, 720), (640, 360)):
            want = frame.to_ndarray(width=w, height=h, format="bgr24",
                                    interpolation="FAST_BILINEAR")
            got = to_bgr(frame, w, h)
            assert got.shape == (h, w, 3) and got.dtype == np.uint8
            assert np.abs(got.astype(np.int16) - want).mean() < 1.5, (frame.format.name, w)
