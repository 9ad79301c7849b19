"""Decoded frames become BGR pictures only when something looks at them: frames the motion
gate finds still are never converted."""

from __future__ import annotations

import threading
from pathlib import Path

import av
import cv2
import numpy as np
from av.video.reformatter import VideoReformatter

import stream.sources.reader as reader_mod
from stream.motion import MotionGate
from stream.pipeline import Pipeline
from stream.sources.reader import LazyImage, to_bgr
from tests.stream.helpers import make_config, read_jsonl, wait_for


def _first_frame(path: Path):
    with av.open(str(path)) as c:
        return next(c.decode(video=0))


def test_lazy_image_converts_once_from_any_thread(evaldata):
    frame = _first_frame(evaldata / "videos" / "cars.mp4")
    want = to_bgr(VideoReformatter(), frame, 640, 360)
    lazy = LazyImage(frame, 640, 360, None)
    got: list[np.ndarray] = []
    threads = [threading.Thread(target=lambda: got.append(lazy.get()), name=f"test:get{i}")
               for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(got) == 4 and all(g is got[0] for g in got)  # one conversion, kept
    assert np.array_equal(got[0], want)
    turned = LazyImage(frame, 640, 360, cv2.ROTATE_90_CLOCKWISE).get()
    assert turned.shape == (640, 360, 3)
    assert np.array_equal(turned, cv2.rotate(want, cv2.ROTATE_90_CLOCKWISE))


def test_gate_given_a_thumbnail_does_not_ask_for_the_picture():
    gate = MotionGate()
    thumb = np.zeros((90, 160), np.uint8)

    def picture():
        raise AssertionError("converted")

    assert gate.moved(picture, 0.0, thumb)  # first frame: moved, from the thumbnail
    assert not gate.moved(picture, 0.1, thumb)


def test_still_frames_are_never_converted(tmp_path, evaldata, engine_worker, monkeypatch):
    conversions = []

    def counting(scaler, frame, width, height):
        conversions.append(threading.current_thread().name)
        return to_bgr(scaler, frame, width, height)

    monkeypatch.setattr(reader_mod, "to_bgr", counting)
    cfg = make_config(tmp_path, {
        "defaults": {"realtime": False, "outputs": ["jsonl"]},
        "cameras": {"toll": {"url": str(evaldata / "videos" / "cars.mp4")}},
        "outputs": {"jsonl": {"type": "jsonl", "file": "{camera_id}.jsonl"}},
    })
    with Pipeline(cfg, engine_worker) as p:
        assert wait_for(p.done, 180), p.status()
        assert p.wait_delivered(30)
        cam = p.status()["cameras"]["toll"]
    # a file read as fast as possible drops nothing: every sampled frame was analysed or
    # found still, and only the analysed ones were converted (on the analysis thread)
    assert cam["frames_dropped"] == 0 and cam["frames_skipped_still"] > 20
    assert cam["frames_sampled"] == cam["frames_analysed"] + cam["frames_skipped_still"]
    assert len(conversions) == cam["frames_analysed"]
    assert not any(name.startswith("camera:") for name in conversions)
    plates = {e["results"][0]["plate"] for e in read_jsonl(Path(cfg.output_dir) / "toll.jsonl")}
    assert {"34a36837", "34a23126", "89c20339"} <= plates
