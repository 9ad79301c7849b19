"""The decoder of ``fast_decode: auto``: a switch to decoding without the deblocking filter (and
back) takes effect at the next keyframe, loses and repeats no frame; a camera starts fast,
decodes in full when granted the CPU, goes back to fast when overloaded, and says so in its
status."""

from __future__ import annotations

import time
from pathlib import Path

import av
import numpy as np
import pytest

import stream.sources.reader as reader_mod
from stream.sources import CameraReader, FrameSlot
from stream.sources.decoding import Decoder
from stream.sources.headroom import CpuHeadroom
from tests.stream.helpers import make_config, read_to_end, write_video

GOP = 25


def x264(bframes: int = 0) -> dict[str, str]:
    """Deblocking on (ultrafast has none), a keyframe every GOP frames and nowhere else; with
    B frames the decoder holds frames back, which a switch must drain."""
    return {"preset": "veryfast", "crf": "32", "x264-params":
            f"keyint={GOP}:min-keyint={GOP}:scenecut=0:bframes={bframes}"}


def _moving_texture(n: int, size: tuple[int, int] = (240, 320)) -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    base = rng.integers(0, 255, (size[0], size[1] * 2, 3), np.uint8)
    base = (base // 64 * 64).astype(np.uint8)  # blocks of flat colour: edges to deblock
    return [np.ascontiguousarray(np.roll(base, -3 * i, axis=1)[:, :size[1]]) for i in range(n)]


@pytest.fixture(scope="module", params=[0, 2], ids=["P", "B"])
def gop_clip(tmp_path_factory, request) -> Path:
    return write_video(tmp_path_factory.mktemp("clips") / "gop.mp4", _moving_texture(100), 25,
                       options=x264(request.param))


def _decode(path: Path, switch_at: dict[int, bool] | None = None
            ) -> tuple[list[np.ndarray], list[float], Decoder]:
    """All frames (grey), their times; ``switch_at``: frame index -> request(fast) there."""
    images, times = [], []
    with av.open(str(path)) as c:
        dec = Decoder(c.streams.video[0])
        for i, frame in enumerate(dec.frames(c)):
            if switch_at and i in switch_at:
                dec.request(switch_at[i])
            images.append(frame.to_ndarray(format="gray"))
            times.append(frame.time)
    return images, times, dec


def test_switches_take_effect_at_the_next_keyframe_and_lose_no_frame(gop_clip):
    plain, plain_t, _ = _decode(gop_clip)
    assert len(plain) == 100
    images, times, dec = _decode(gop_clip, {10: True, 60: False})
    assert times == plain_t  # every frame once, in order, same timestamps
    assert all(np.isfinite(times)) and times == sorted(times)
    assert dec.switches == 2 and not dec.fast
    differs = [not np.array_equal(a, b) for a, b in zip(plain, images, strict=True)]
    # full until the keyframe after the request (frame 25), fast until the one after 60 (75)
    assert not any(differs[:GOP]) and not any(differs[3 * GOP:])
    assert sum(differs[GOP:3 * GOP]) >= GOP  # the filter was skipped there...
    for a, b in zip(plain[GOP:3 * GOP], images[GOP:3 * GOP], strict=True):
        assert np.abs(a.astype(int) - b.astype(int)).mean() < 8  # ...and the picture the same


def test_a_request_taken_back_before_the_keyframe_switches_nothing(gop_clip):
    plain, _, _ = _decode(gop_clip)
    images, _, dec = _decode(gop_clip, {5: True, 8: False})
    assert dec.switches == 0 and len(images) == len(plain)
    assert all(np.array_equal(a, b) for a, b in zip(plain, images, strict=True))


def test_codecs_without_an_in_loop_filter_do_not_switch(tmp_path):
    path = tmp_path / "mjpeg.avi"
    with av.open(str(path), "w") as out:
        vs = out.add_stream("mjpeg", rate=25)
        vs.width, vs.height, vs.pix_fmt = 320, 240, "yuvj420p"
        for i, img in enumerate(_moving_texture(10)):
            f = av.VideoFrame.from_ndarray(img, format="bgr24").reformat(format="yuvj420p")
            f.pts = i
            for p in vs.encode(f):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
    _, times, dec = _decode(path, {1: True})
    assert len(times) == 10 and not dec.can_switch and dec.switches == 0 and not dec.fast


# -- the camera's policy (fast_decode: auto) ---------------------------------------------------

CLOCK_FPS = 100_000  # far faster than any decoder: decoding at "real time" falls behind


@pytest.fixture(scope="module")
def sideways_fast_clock_clip(tmp_path_factory) -> Path:
    """A clip whose clock no decoder keeps up with, stored sideways (a display matrix)."""
    frames = _moving_texture(300, (180, 320))
    return write_video(tmp_path_factory.mktemp("clips") / "fast_clock.mp4", frames, CLOCK_FPS,
                       rotation=90, options=x264(2))


class Granting(CpuHeadroom):
    """A box with the CPU to spare (or none: ``idle=0``), asked without waiting."""

    def __init__(self, idle: float = 2.0) -> None:
        super().__init__(lambda: idle, 2.0, sample_s=0, window_s=0)
        self.asked: list[float] = []  # the extra cores each request named
        self.switches: list[str] = []

    def grant(self, name: str, extra: float) -> bool:
        self.asked.append(extra)
        return super().grant(name, extra)

    def switched(self, name: str) -> None:
        self.switches.append(name)
        super().switched(name)


def _read(tmp_path: Path, clip: Path, fast_decode: object, headroom: CpuHeadroom | None = None
          ) -> tuple[CameraReader, list]:
    cam = make_config(tmp_path, {"cameras": {"c": {"url": str(clip), "realtime": True,
                                                   "motion": False,
                                                   "fast_decode": fast_decode}}}).cameras["c"]
    return read_to_end(cam, lambda f: f.image.shape, headroom=headroom)


@pytest.fixture(scope="module")
def paced_clip(tmp_path_factory) -> Path:
    """4 s at 50 fps that any decoder keeps up with, a keyframe every GOP frames."""
    return write_video(tmp_path_factory.mktemp("clips") / "paced.mp4",
                       _moving_texture(200, (120, 160)), 50, options=x264())


def test_auto_starts_fast_and_decodes_in_full_once_granted(tmp_path, paced_clip, monkeypatch):
    monkeypatch.setattr(reader_mod, "AUTO_COST_S", 0.5)
    headroom = Granting()
    reader, _ = _read(tmp_path, paced_clip, "auto", headroom)
    s = reader.stats
    assert s.state == "ended" and s.decoded == 200 and s.shed == 0
    assert not s.fast_decode and s.fast_decode_switches == 1 and headroom.grants == 1
    # asked after 0.5 s of decoding, naming what full decoding would add: some, under a core
    assert 0 < headroom.asked[0] < 1


def test_auto_stays_fast_on_a_box_without_idle_cpu(tmp_path, paced_clip, monkeypatch):
    monkeypatch.setattr(reader_mod, "AUTO_COST_S", 0.5)
    headroom = Granting(idle=0.0)
    reader, _ = _read(tmp_path, paced_clip, "auto", headroom)
    assert reader.stats.fast_decode and reader.stats.fast_decode_switches == 0
    assert headroom.asked and headroom.grants == 0  # it asked and was refused


def test_an_overloaded_camera_decodes_fast_from_the_next_keyframe(tmp_path, monkeypatch):
    """Granted full decoding at once; then the engine takes only a third of the frames (two
    windows of drops in a row: overloaded), so fast again from the next keyframe, and not
    granted again during the hold."""
    monkeypatch.setattr(reader_mod, "AUTO_COST_S", 0.0)
    clip = write_video(tmp_path / "sideways.mp4", _moving_texture(200, (120, 160)), 50,
                       rotation=90, options=x264())
    cam = make_config(tmp_path, {"cameras": {"c": {"url": str(clip), "motion": False}}}
                      ).cameras["c"]
    headroom = Granting()
    reader, shapes = read_to_end(cam, lambda f: (time.sleep(0.06), f.image.shape)[1],
                                 headroom=headroom, block=False)
    s = reader.stats
    assert s.state == "ended" and s.decoded == 200 and reader.slot.dropped > 2 * 40 * 0.05
    # full from frame 25, overloaded at the end of the second window (sampled frame 80), fast
    # from the keyframe at 100
    assert s.fast_decode and s.fast_decode_switches == 2 and headroom.grants == 1
    # still shown upright after the switches (a new decoder's frames carry no display matrix)
    assert set(shapes) == {(160, 120, 3)}


def test_a_mode_changed_across_a_reopen_counts_as_a_switch(tmp_path, paced_clip, monkeypatch):
    """Granted (or overloaded) just before a file loops or a camera reconnects: the new
    decoder opens in the other mode, and the headroom hears of it as of a switch."""
    monkeypatch.setattr(reader_mod, "AUTO_WINDOW", 10**9)  # nobody takes the frames: no drops
    cam = make_config(tmp_path, {"cameras": {"c": {"url": str(paced_clip), "realtime": False,
                                                   "motion": False}}}).cameras["c"]
    headroom = Granting(idle=0.0)
    r = CameraReader(cam, FrameSlot(), headroom=headroom)
    for fast in (True, False, False):
        r._fast = fast
        with av.open(str(paced_clip)) as c:
            r._read(c)
        assert r.stats.fast_decode is fast
    assert r.stats.fast_decode_switches == 1 and headroom.switches == ["c"]


@pytest.mark.parametrize("setting", [False, True])
def test_a_fixed_setting_never_switches(tmp_path, sideways_fast_clock_clip, monkeypatch,
                                        setting):
    monkeypatch.setattr(reader_mod, "SHED_LAG_S", 0.02)
    monkeypatch.setattr(reader_mod, "AUTO_LAG_S", 0.01)
    monkeypatch.setattr(reader_mod, "AUTO_COST_S", 0.0)
    headroom = Granting()
    reader, _ = _read(tmp_path, sideways_fast_clock_clip, setting, headroom)
    assert reader.stats.fast_decode is setting and reader.stats.fast_decode_switches == 0
    assert reader.stats.shed > 0  # it was overloaded all the same
    assert headroom.asked == []


def test_auto_policy_overload_then_calm(tmp_path, gop_clip, monkeypatch):
    monkeypatch.setattr(reader_mod, "AUTO_HOLD_S", 100.0)
    monkeypatch.setattr(reader_mod, "AUTO_COST_S", 0.0)
    cam = make_config(tmp_path, {"cameras": {"c": {"url": str(gop_clip)}}}).cameras["c"]
    assert cam.fast_decode == "auto"  # the default
    headroom = Granting()
    r = CameraReader(cam, FrameSlot(), headroom=headroom)
    with av.open(str(gop_clip)) as c:
        dec = Decoder(c.streams.video[0], fast=True)
        limit, stats = reader_mod.AUTO_LAG_S, r.stats
        assert limit < reader_mod.SHED_LAG_S  # the switch comes before shedding
        assert r._fast  # auto starts fast
        r._cpu_mark = (0.0, time.thread_time())  # as _read sets it: this thread's CPU from here

        def step(now: float, lag: float, sampled: int = 1, dropped: int = 0) -> bool:
            stats.lag_s = lag
            stats.sampled += sampled
            r.slot.dropped += dropped
            r._auto_decode(dec, now)
            return dec._wanted

        assert step(0, limit * 0.6) is True  # not calm: not asked
        assert headroom.asked == []
        assert step(1, 0.0) is False  # calm, granted
        headroom.switched("c")
        assert step(2, limit * 0.9) is False  # behind, but within the limit
        assert step(3, limit * 1.1) is True  # past it
        assert step(4, 0.0) is True  # caught up: stays fast for AUTO_HOLD_S...
        assert step(103, 0.0) is True
        assert len(headroom.asked) == 1
        assert step(104, limit * 0.2) is False  # ...then asks again
        headroom.switched("c")
        # frames replaced in the slot (the engine behind) count too: > 5 % of two windows in a
        # row (one is a burst, as when the engine makes its sessions at start)
        win = reader_mod.AUTO_WINDOW
        over, at_most = int(win * 0.05) + 1, int(win * 0.05)
        assert step(300, 0.0, sampled=win, dropped=at_most) is False
        assert step(301, 0.0, sampled=win, dropped=over) is False
        assert step(302, 0.0, sampled=win, dropped=at_most) is False
        assert step(303, 0.0, sampled=win, dropped=over) is False
        assert step(304, 0.0, sampled=win, dropped=over) is True
