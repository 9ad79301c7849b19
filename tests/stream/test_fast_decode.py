"""``fast_decode: true``: H.264 decoded without its deblocking filter still gives one event per
labelled plate, with the right text, and really changes how frames are decoded."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
from rapidfuzz import fuzz

from stream.pipeline import Pipeline
from stream.sources.decoding import FAST_DECODE_OPTIONS
from tests.stream.helpers import make_config, read_jsonl, wait_for


def _frame(path: Path, index: int, options: dict | None) -> np.ndarray:
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        if options:
            stream.codec_context.options = options
        for i, frame in enumerate(c.decode(stream)):
            if i == index:
                return frame.to_ndarray(format="bgr24")
    raise AssertionError("short video")


def test_fast_decode_skips_the_deblocking_filter(evaldata):
    video = evaldata / "videos" / "cars.mp4"
    plain, fast = _frame(video, 30, None), _frame(video, 30, FAST_DECODE_OPTIONS)
    assert plain.shape == fast.shape
    diff = np.abs(plain.astype(np.int16) - fast.astype(np.int16))
    assert diff.mean() > 0.1  # other pixels: the filter was skipped
    assert diff.mean() < 10  # but the same picture


def test_fast_decode_cameras_read_the_labelled_plates(tmp_path, evaldata, video_labels,
                                                      engine_worker):
    cfg = make_config(tmp_path, {
        "defaults": {"realtime": False, "outputs": ["jsonl"], "memory_decay": 300,
                     "fast_decode": True},
        "cameras": {
            "toll": {"url": str(evaldata / "videos" / "cars.mp4")},
            "street": {"url": str(evaldata / "videos" / "license_plate.mp4")},
        },
        "outputs": {"jsonl": {"type": "jsonl", "file": "{camera_id}.jsonl"}},
    })
    assert all(c.fast_decode is True for c in cfg.cameras.values())
    with Pipeline(cfg, engine_worker) as p:
        assert wait_for(p.done, 180), p.status()
        assert p.wait_delivered(30), p.status()
    for cam, video in (("toll", "cars.mp4"), ("street", "license_plate.mp4")):
        plates = [e["results"][0]["plate"]
                  for e in read_jsonl(Path(cfg.output_dir) / f"{cam}.jsonl")]
        for label in (p["text"].lower() for p in video_labels[video]["plates"]):
            assert [t for t in plates if fuzz.ratio(t, label) >= 85] == [label], (label, plates)
