"""The motion gate: still stretches of a real video are skipped, moving ones are not, and the
reader's shared thumbnail gives the same decisions as the whole frame."""

from __future__ import annotations

import av
import pytest
from av.video.reformatter import VideoReformatter

from stream.motion import THUMB_WIDTH, MotionGate, grey_thumbnail, thumbnail_height
from stream.sources.reader import to_grey_thumbnail


def _decisions(path, step: int, with_thumb: bool) -> list[bool]:
    gate, scaler, out = MotionGate(), VideoReformatter(), []
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        rate = float(stream.average_rate)
        for i, f in enumerate(c.decode(stream)):
            if i % step == 0:
                img = f.to_ndarray(format="bgr24")
                h, w = img.shape[:2]
                thumb = to_grey_thumbnail(scaler, f, THUMB_WIDTH, thumbnail_height(w, h)) \
                    if with_thumb else None
                out.append(gate.moved(img, i / rate, thumb))
    return out


def test_gate_skips_still_frames_and_the_reader_thumbnail_decides_the_same(evaldata):
    video = evaldata / "videos" / "cars.mp4"
    for step in (1, 3):
        whole = _decisions(video, step, with_thumb=False)
        assert 0 < whole.count(False) < len(whole) - 10  # some still stretches, mostly moving
        luma = _decisions(video, step, with_thumb=True)
        agree = sum(a == b for a, b in zip(whole, luma, strict=True))
        assert agree >= 0.97 * len(whole), (step, agree, len(whole))
        assert abs(luma.count(False) - whole.count(False)) <= 3


def test_thumbnail_of_another_width_is_not_used():
    import numpy as np

    gate = MotionGate()
    img = np.zeros((720, 1280, 3), np.uint8)
    assert gate.moved(img, 0.0)
    moved = img.copy()
    moved[200:400, 200:600] = 255
    # a wrong-width thumbnail claiming nothing changed is ignored: the frame itself moved
    assert gate.moved(moved, 0.1, grey_thumbnail(img, 64))


def test_gate_says_where_it_moved():
    """``box``: around the pixels that changed since the last analysed frame (the square's old
    and new places), as fractions of the frame; None where the whole frame counts."""
    import numpy as np

    def frame(x: int) -> np.ndarray:
        img = np.full((720, 1280, 3), 40, np.uint8)
        img[300:380, x:x + 160] = 230
        return img

    gate = MotionGate()
    assert gate.moved(frame(200), 0.0) and gate.box is None  # the first frame: all of it
    assert not gate.moved(frame(200), 0.2) and gate.box is None
    assert gate.moved(frame(320), 0.4)
    x1, y1, x2, y2 = gate.box
    assert abs(x1 - 200 / 1280) < 0.01 and abs(x2 - 480 / 1280) < 0.01
    assert abs(y1 - 300 / 720) < 0.02 and abs(y2 - 380 / 720) < 0.02
    assert gate.moved(frame(320), 2.5) and gate.box is None  # max_skip_s: all of it again
    gate.reset()
    assert gate.box is None


def test_a_crop_takes_its_areas_aspect():
    """A motion crop grows to the aspect of the area it is cut from (the frame or the zones'
    box) and stays inside it, so a camera's crops need few detector inputs."""
    from stream.analysis import _grown_to_aspect

    for area in ((0, 0, 1920, 1080), (400, 300, 1200, 900), (100, 0, 500, 1000)):
        ax1, ay1, ax2, ay2 = area
        aw, ah = ax2 - ax1, ay2 - ay1
        for box in ((ax1, ay1, ax1 + 40, ay1 + 300), (ax2 - 300, ay2 - 40, ax2, ay2),
                    (ax1 + 10, ay1 + 20, ax1 + aw // 2, ay1 + ah // 2),
                    (ax1, ay1 + ah // 3, ax2, ay1 + ah // 3 + 50)):
            x1, y1, x2, y2 = _grown_to_aspect(box, area)
            assert ax1 <= x1 <= box[0] and ay1 <= y1 <= box[1], (area, box)
            assert box[2] <= x2 <= ax2 and box[3] <= y2 <= ay2, (area, box)
            assert abs((x2 - x1) / (y2 - y1) - aw / ah) < 0.02 * aw / ah, (area, box)


@pytest.mark.parametrize("area", [None, (252, 252, 1048, 720), (300, 0, 700, 720)])
def test_motion_crops_use_only_the_inputs_made_ahead(recognizer, evaldata, area):
    """prepare_scaled makes the plate detector's inputs for crops of a frame's aspect; crops of
    any size, grown to that aspect, are then detected without making another (a session made
    on an engine thread holds every camera's frames behind it for ~0.3-0.6 s). ``area``: the
    whole frame, or a zones' box (a larger scale; a portrait one)."""
    import numpy as np

    from engine.backends.fitted import FittedInputs
    from engine.plates.model import PlateDetector
    from stream.analysis import _grown_to_aspect

    with av.open(str(evaldata / "videos" / "cars.mp4")) as c:
        img = next(f for i, f in enumerate(c.decode(video=0)) if i == 60).to_ndarray(
            format="bgr24")
    ax1, ay1, ax2, ay2 = area or (0, 0, img.shape[1], img.shape[0])
    h, w = ay2 - ay1, ax2 - ax1
    shared = recognizer.plates
    fitted = FittedInputs(shared.backend, 416, shared.fitted._make, "plate detector")
    detector = PlateDetector(shared.backend, fitted)
    assert detector.prepare_scaled(h, w) == 5  # one input per scaled size
    made = set(fitted._by_shape)
    rng = np.random.default_rng(0)
    for _ in range(40):
        x1, y1 = int(rng.integers(ax1, ax2 - 40)), int(rng.integers(ay1, ay2 - 40))
        x2, y2 = int(rng.integers(x1 + 32, ax2 + 1)), int(rng.integers(y1 + 32, ay2 + 1))
        x1, y1, x2, y2 = _grown_to_aspect((x1, y1, x2, y2), (ax1, ay1, ax2, ay2))
        detector.detect(img[y1:y2, x1:x2], scale=416 / max(h, w))
    assert set(fitted._by_shape) == made
