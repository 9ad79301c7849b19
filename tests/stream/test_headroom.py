"""Which ``fast_decode: auto`` camera may decode in full: one at a time, where the box stays
idle enough (stream.sources.headroom), and what the meter reads on this machine."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from stream.sources import headroom as headroom_mod
from stream.sources.headroom import CpuHeadroom, CpuMeter, cpu_capacity


class Box:
    """A clock and an idle reading that the test moves."""

    def __init__(self, idle: float) -> None:
        self.now, self.idle, self.reads = 0.0, idle, 0

    def meter(self) -> float:
        self.reads += 1
        return self.idle

    def clock(self) -> float:
        return self.now


def _headroom(box: Box, capacity: float = 2.0) -> CpuHeadroom:
    return CpuHeadroom(box.meter, capacity, reserve=0.3, sample_s=2.0, window_s=10.0,
                       clock=box.clock)


def _ask(h: CpuHeadroom, box: Box, name: str, extra: float, until: float) -> float | None:
    """Ask every half second until ``until``: when it was granted, or None."""
    while box.now < until:
        box.now += 0.5
        if h.grant(name, extra):
            return box.now
    return None


def test_granted_after_a_window_of_idle_that_leaves_the_reserve():
    box = Box(idle=1.0)
    h = _headroom(box)
    # 1.0 idle - 0.3 extra leaves 0.7 >= 0.3 * 2 cores: granted once 10 s of readings are in
    assert _ask(h, box, "a", 0.3, 30) == 10.0
    assert h.grants == 1 and h.idle == 1.0


def test_refused_where_the_grant_would_eat_the_reserve():
    box = Box(idle=0.8)
    h = _headroom(box)
    assert _ask(h, box, "a", 0.25, 60) is None  # 0.8 - 0.25 < 0.6
    assert _ask(h, box, "a", 0.15, 90) is not None  # 0.8 - 0.15 >= 0.6


def test_the_least_idle_in_the_window_decides():
    box = Box(idle=1.5)
    h = _headroom(box)
    _ask(h, box, "a", 0.1, 6)
    box.idle = 0.5  # one busy reading...
    _ask(h, box, "a", 0.1, 8)
    box.idle = 1.5
    assert _ask(h, box, "a", 0.1, 16) is None  # ...keeps it refused while in the window
    assert _ask(h, box, "a", 0.1, 30) is not None


def test_a_box_never_idle_enough_keeps_one_window_of_readings():
    box = Box(idle=0.5)
    h = _headroom(box)
    assert _ask(h, box, "a", 0.1, 3600) is None  # an hour of refusals
    assert box.reads >= 1800 and len(h._readings) == 5  # 10 s of readings, 2 s apart
    box.idle = 1.5
    assert _ask(h, box, "a", 0.1, 3600 + 20) == 3610.0  # the window moves on: 5 new readings


def test_one_camera_at_a_time():
    box = Box(idle=1.8)
    h = _headroom(box)
    assert _ask(h, box, "a", 0.1, 20) == 10.0
    # b waits until a has switched and a new window shows the box with a decoding in full
    assert _ask(h, box, "b", 0.1, 25) is None
    h.switched("a")
    assert _ask(h, box, "b", 0.1, 40) == 35.0
    # a camera that never switches (no keyframe came) stops blocking after PENDING_MAX_S
    assert _ask(h, box, "c", 0.1, 35 + headroom_mod.PENDING_MAX_S - 1) is None
    assert _ask(h, box, "c", 0.1, 80) is not None


def test_an_overload_starts_the_window_again():
    box = Box(idle=1.8)
    h = _headroom(box)
    _ask(h, box, "a", 0.1, 8)
    h.overloaded()
    assert _ask(h, box, "a", 0.1, 17.5) is None
    assert _ask(h, box, "a", 0.1, 30) == 18.0


def test_capacity_is_the_affinity_capped_by_a_cgroup_quota(tmp_path):
    cores = float(len(os.sched_getaffinity(0)))
    assert cpu_capacity(tmp_path) == cores  # no cpu.max: no quota
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cpu_capacity(tmp_path) == cores
    (tmp_path / "cpu.max").write_text("50000 100000\n")
    assert cpu_capacity(tmp_path) == min(cores, 0.5)


def _spin(stop: threading.Event) -> None:
    while not stop.is_set():
        pass


@pytest.mark.parametrize("where", ["another process", "this process"])
def test_the_meter_counts_busy_cores_wherever_they_spin(where):
    meter = CpuMeter()
    if meter.capacity < 2:
        pytest.skip("needs 2 cores")
    stop = threading.Event()
    if where == "another process":
        busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    else:
        busy = threading.Thread(target=_spin, args=(stop,), daemon=True)
        busy.start()
    try:
        time.sleep(0.3)
        meter.idle_cores()  # from here
        time.sleep(1.5)
        idle = meter.idle_cores()
    finally:
        stop.set()
        if isinstance(busy, subprocess.Popen):
            busy.kill()
            busy.wait()
        else:
            busy.join(2)
    # one of the cores was busy all along (the host may have taken more: never less)
    assert idle is not None and 0 <= idle <= meter.capacity - 0.7
