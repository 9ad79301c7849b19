"""The motion gate: still stretches of a real video are skipped, moving ones are not, and the
reader's shared thumbnail gives the same decisions as the whole frame."""

from __future__ import annotations

import av
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
