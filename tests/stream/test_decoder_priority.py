"""Decoding threads run below the engine; a camera whose decoding falls behind real time
sheds every other sampled frame until it has caught up, and its status says so."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest

import stream.sources.reader as reader_mod
from stream.pipeline import Pipeline
from stream.sources import CameraReader, FrameSlot
from tests.stream.helpers import make_config, read_to_end, wait_for, write_video

# A clip whose clock runs far faster than any decoder: 1e5 frames a second of video, so
# decoding it at "real time" falls behind within a few frames.
CLOCK_FPS = 100_000


@pytest.fixture(scope="module")
def fast_clock_clip(tmp_path_factory) -> Path:
    base = np.random.default_rng(7).integers(0, 255, (360, 640, 3), np.uint8)
    return write_video(tmp_path_factory.mktemp("clips") / "fast_clock.mp4",
                       (np.roll(base, 4 * i, axis=1) for i in range(400)), CLOCK_FPS)


def _run_reader(tmp_path: Path, clip: Path) -> tuple[CameraReader, list[float], list[int]]:
    cam = make_config(tmp_path, {"cameras": {"c": {"url": str(clip), "realtime": True,
                                                   "motion": False}}}).cameras["c"]
    nice: list[int] = []

    def started(reader: CameraReader) -> None:
        assert wait_for(lambda: reader.native_id is not None, 5)
        nice.append(os.getpriority(os.PRIO_PROCESS, reader.native_id))

    reader, positions = read_to_end(cam, lambda f: f.position, on_start=started)
    return reader, positions, nice


def test_decoding_runs_below_the_engine_and_sheds_frames_when_behind(tmp_path,
                                                                     fast_clock_clip,
                                                                     monkeypatch):
    monkeypatch.setattr(reader_mod, "SHED_LAG_S", 0.05)
    reader, positions, nice = _run_reader(tmp_path, fast_clock_clip)
    # the reader thread itself is niced; this (an engine-like) thread is not
    assert nice == [reader_mod.DECODER_NICE] and reader_mod.DECODER_NICE > 0
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == 0
    s = reader.stats
    assert s.state == "ended" and s.decoded == 400 and s.sampled == 400
    assert s.lag_s > 0.05  # still behind at the end: this clock cannot be kept
    # behind: every other frame left out, never two in a row
    assert 20 <= s.shed <= 200, s
    assert len(positions) + s.shed == 400
    steps = np.round(np.diff(positions) * CLOCK_FPS).astype(int)
    assert set(steps) == {1, 2}  # never two in a row left out
    assert np.count_nonzero(steps == 2) in (s.shed - 1, s.shed)  # the last may be one


def test_shedding_starts_past_the_limit_and_stops_at_half_of_it(tmp_path, fast_clock_clip):
    cam = make_config(tmp_path, {"cameras": {"c": {"url": str(fast_clock_clip)}}}).cameras["c"]
    r = CameraReader(cam, FrameSlot())
    limit = reader_mod.SHED_LAG_S
    lags = [0.0, limit * 0.9, limit * 1.5, limit * 1.2, limit * 0.8, limit * 0.6,
            limit * 0.4, limit * 0.45]
    assert [r._shed(lag) for lag in lags] == [False, False, True, False, True, False,
                                              False, False]


def test_status_counts_shed_frames_as_dropped(tmp_path, fast_clock_clip, engine_worker,
                                              monkeypatch):
    monkeypatch.setattr(reader_mod, "SHED_LAG_S", 0.05)
    cfg = make_config(tmp_path, {"cameras": {"c": {"url": str(fast_clock_clip),
                                                   "realtime": True, "motion": False,
                                                   "fps": 2000}}})
    with Pipeline(cfg, engine_worker) as p:
        assert wait_for(p.done, 60), p.status()
        cam = p.status()["cameras"]["c"]
    assert cam["frames_shed"] > 0 and cam["decode_lag_s"] > 0.05
    assert cam["frames_dropped"] >= cam["frames_shed"]
    assert cam["frames_sampled"] >= cam["frames_analysed"] + cam["frames_dropped"]


def test_lag_grows_when_decoding_is_slow_and_not_from_clock_drift():
    from stream.sources.reader import DecodeLag

    def run(speed: float, seconds: float, fps: float = 25) -> list[float]:
        # ``speed``: video seconds decoded per wall second
        lag, out = DecodeLag(), []
        for i in range(int(seconds * fps)):
            position = i / fps
            out.append(lag.update(1000.0 + position / speed, position))
        return out

    assert max(run(1.0, 600)) < 1e-9  # on time
    assert max(run(0.9995, 24 * 3600, fps=1)) < 0.1  # a clock 500 ppm slow, for a day
    slow = run(0.8, 60)  # decoding at 0.8x real time
    assert slow[25 * 10] > 1.0 and slow[-1] > slow[25 * 10]
    # a timestamp that goes back (a new stream) starts afresh
    lag = DecodeLag()
    for i in range(100):
        lag.update(float(i) * 2, float(i))  # 0.5x: 50 s behind after 100 s of video
    assert lag.update(200.0, 0.0) == 0.0
