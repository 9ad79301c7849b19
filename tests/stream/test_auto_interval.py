"""``detect_interval: auto`` (stream.auto_interval): a camera that drops frames thins its search
for new vehicles, and gets it back when the box has the CPU for it, one camera at a time and
before any camera decodes in full."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream import auto_interval
from stream.analysis import CameraAnalyzer
from stream.auto_interval import MAX_LEVEL, WINDOW, AutoInterval
from stream.config import CameraConfig
from stream.sources.frames import FrameSlot
from stream.sources.headroom import CpuHeadroom
from stream.sources.reader import CameraReader
from tests.stream.helpers import make_config, read_jsonl, wait_for
from tests.stream.test_headroom import Box, _headroom


class Camera:
    """A slot that a test fills (``dropped``) and an AutoInterval taking frames from it."""

    def __init__(self, box: Box, headroom: CpuHeadroom, name: str = "a",
                 cost: float | None = 0.02) -> None:
        self.box, self.slot = box, FrameSlot()
        self.auto = AutoInterval(name, self.slot, headroom, lambda: cost, clock=box.clock)
        self.thinned = 0  # frames not searched whole so far
        self.levels: list[int] = []
        self.times: list[float] = []

    def frames(self, n: int, dropped_each: int = 0, dt: float = 0.2, shed_each: int = 0) -> int:
        """``n`` frames taken ``dt`` apart, with ``dropped_each`` dropped in the slot and
        ``shed_each`` shed by the decoder before each; the level after the last."""
        for _ in range(n):
            self.box.now += dt
            self.slot.dropped += dropped_each
            self.slot.shed += shed_each
            level = self.auto.level(self.thinned)
            self.thinned += level > 0
            self.levels.append(level)
            self.times.append(self.box.now)
        return self.auto.current


def test_a_camera_that_keeps_up_stays_at_zero():
    box = Box(idle=0.0)
    cam = Camera(box, _headroom(box))
    assert cam.frames(500) == 0 and cam.auto.changes == 0


def test_a_burst_of_drops_is_not_overload():
    box = Box(idle=0.0)
    cam = Camera(box, _headroom(box))
    cam.frames(WINDOW // 2, dropped_each=1)  # one window over 5 %...
    assert cam.frames(WINDOW) == 0  # ...then one that keeps up
    assert cam.frames(WINDOW // 2, dropped_each=1) == 0  # one window over again: still 0


def test_drops_in_two_windows_in_a_row_raise_it_step_by_step_to_the_cap():
    box = Box(idle=0.0)
    h = _headroom(box)
    cam = Camera(box, h)
    # one of every 7 frames dropped (14 %), over 5 %: two windows of 20 later, one step up
    for _ in range(3):
        cam.frames(5)
        cam.frames(1, dropped_each=1)
    assert cam.auto.current == 0
    for _ in range(3):
        cam.frames(5)
        cam.frames(1, dropped_each=1)
    assert cam.auto.current == 1 and cam.auto.changes == 1
    assert h._thinned == {"a"}
    cam.frames(WINDOW * 2, dropped_each=1)
    assert cam.auto.current == MAX_LEVEL
    cam.frames(WINDOW * 10, dropped_each=1)
    assert cam.auto.current == MAX_LEVEL and cam.auto.changes == MAX_LEVEL


def test_frames_shed_by_a_decoder_behind_count_as_lost():
    box = Box(idle=0.0)
    cam = Camera(box, _headroom(box))
    assert cam.frames(WINDOW, shed_each=1) == 1  # every other sampled frame shed: 2 windows


def test_one_dropped_frame_in_a_window_is_within_the_ratio():
    box = Box(idle=0.0)
    cam = Camera(box, _headroom(box))
    for _ in range(10):  # 1 of 20: exactly 5 %, not over it
        cam.frames(19)
        cam.frames(1, dropped_each=1)
    assert cam.auto.current == 0


def _overloaded(cam: Camera, level: int) -> None:
    while cam.auto.current < level:
        cam.frames(WINDOW, dropped_each=1)


def test_back_one_step_at_a_time_when_the_box_has_the_cpu():
    box = Box(idle=0.0)
    h = _headroom(box)
    cam = Camera(box, h)
    _overloaded(cam, 2)
    raised = box.now
    box.idle = 1.5  # the thinning freed the CPU: the box stays idle enough
    cam.frames(400)  # 80 s
    downs = [cam.times[i] for i in range(1, len(cam.levels))
             if cam.levels[i] < cam.levels[i - 1]]
    assert cam.auto.current == 0 and len(downs) == 2
    first, second = downs
    assert first - raised >= auto_interval.HOLD_S  # not before the hold after a raise
    assert second - first >= 10.0  # each step waits for a new window of idle readings
    assert h._thinned == set() and h.grants == 2


def test_it_stays_thinned_while_the_step_would_eat_the_reserve():
    box = Box(idle=0.0)
    h = _headroom(box)
    # what a step down adds: ~5 thinned frames a second x 0.1 s of engine CPU each = 0.5
    # cores; 1.0 idle - 0.5 leaves less than the 0.6 reserve of 2 cores
    cam = Camera(box, h, cost=0.1)
    _overloaded(cam, 1)
    box.idle = 1.0
    assert cam.frames(1000) == 1
    box.idle = 1.2  # now it fits
    assert cam.frames(200) == 0


def test_no_step_down_before_the_engine_cost_is_known():
    box = Box(idle=2.0)
    cam = Camera(box, _headroom(box), cost=None)
    _overloaded(cam, 1)
    assert cam.frames(1000) == 1


def test_a_thinned_camera_comes_before_any_decoding_in_full():
    box = Box(idle=0.0)
    h = _headroom(box)
    cam = Camera(box, h, "thinned")
    _overloaded(cam, 1)
    box.idle = 1.8
    granted: list[str] = []
    for _ in range(400):  # 80 s: a decoder asks for full decoding on every frame too
        cam.frames(1)
        if h.grant("decoder", 0.1):
            granted.append(f"decoder@{cam.auto.current}")
    assert cam.auto.current == 0
    assert granted and all(g == "decoder@0" for g in granted)


def test_an_overload_elsewhere_restarts_the_window():
    box = Box(idle=0.0)
    h = _headroom(box)
    cam = Camera(box, h)
    _overloaded(cam, 1)
    box.idle = 1.8
    for _ in range(20):  # another camera overloaded every 8 s: no window of idle completes
        cam.frames(40)
        h.overloaded()
    assert cam.auto.current == 1


def _cam(url: Path, **kw) -> CameraConfig:
    return CameraConfig(name="street", url=str(url), realtime=False, **kw)


@pytest.mark.parametrize("block, detect_interval, expected", [
    (False, "auto", True),  # frames can be dropped: governed
    (True, "auto", False),  # a file read as fast as possible waits: always 0
    (False, 1, False),  # a number is fixed
])
def test_where_auto_governs(evaldata, block, detect_interval, expected):
    cam = _cam(evaldata / "videos" / "cars.mp4", detect_interval=detect_interval)
    a = CameraAnalyzer(cam, FrameSlot(block=block), worker=None, emit=print)
    assert (a._auto is not None) is expected
    assert a.interval == (0 if detect_interval == "auto" else detect_interval)


def test_a_camera_that_cannot_keep_up_thins_its_detection(evaldata, engine_worker):
    """A real overload: the reader decodes a 720p file as fast as it can into a slot that
    drops (latest wins), far faster than the engine analyses. The camera goes up to the cap,
    says so in its stats, and still reports the plates it tracks."""
    cam = _cam(evaldata / "videos" / "cars.mp4", detect_interval="auto")
    slot, events = FrameSlot(block=False), []
    headroom = CpuHeadroom()
    analyzer = CameraAnalyzer(cam, slot, engine_worker, events.append, headroom=headroom)
    reader = CameraReader(cam, slot, headroom=headroom)
    analyzer.start()
    reader.start()
    try:
        assert wait_for(analyzer.finished.is_set, 120), (reader.stats, analyzer.stats)
    finally:
        reader.stop()
        analyzer.stop()
    st = analyzer.stats
    assert analyzer.interval == MAX_LEVEL and analyzer.interval_changes == MAX_LEVEL
    assert slot.dropped > reader.stats.sampled / 2  # it really was overloaded
    assert st.between > 0 and st.around_plates > 0, st
    assert events and all(e.plate for e in events)
    assert headroom._thinned == {"street"}


def test_the_status_and_the_run_show_the_interval(tmp_path, evaldata, engine_worker):
    """A file read as fast as possible keeps 0 under ``auto``, and every event."""
    from stream.pipeline import Pipeline

    cfg = make_config(tmp_path, {
        "cameras": {"street": {"url": str(evaldata / "videos" / "license_plate.mp4"),
                               "realtime": False, "sample": 4, "outputs": ["jsonl"],
                               "detect_interval": "auto"}},
        "outputs": {"jsonl": {"type": "jsonl", "file": "{camera_id}.jsonl"}},
    })
    assert cfg.cameras["street"].detect_interval == "auto"
    with Pipeline(cfg, engine_worker) as p:
        assert wait_for(p.done, 120), p.status()
        assert p.wait_delivered(30)
        st = p.status()["cameras"]["street"]
    assert st["detect_interval"] == 0 and st["detect_interval_changes"] == 0
    assert st["frames_between"] == st["frames_around_plates"] == 0
    (ev,) = read_jsonl(Path(cfg.output_dir) / "street.jsonl")
    assert ev["results"][0]["plate"] == "ls15ebc"
