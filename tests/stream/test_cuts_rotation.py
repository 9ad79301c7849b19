"""Clips a live camera can deliver that a plain file test does not: hard scene cuts inside one
stream, and a phone video stored sideways with a display matrix (issue 13). The clips are
made from the sample videos at test time, with PyAV, in a temp dir."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
from rapidfuzz import fuzz

from stream.pipeline import Pipeline
from tests.stream.helpers import make_config, read_jsonl, wait_for, write_video


def _frames(path: Path) -> list:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]


def _run(tmp_path: Path, video: Path, engine_worker, **cam) -> list[dict]:
    cfg = make_config(tmp_path, {
        "cameras": {"cam": {"url": str(video), "realtime": False, "outputs": ["jsonl"], **cam}},
        "outputs": {"jsonl": {"type": "jsonl", "file": "{camera_id}.jsonl"}},
    })
    with Pipeline(cfg, engine_worker) as p:
        assert wait_for(p.done, 240), p.status()
        assert p.wait_delivered(30), p.status()
    return read_jsonl(Path(cfg.output_dir) / "cam.jsonl")


def test_hard_cuts_between_vehicles_give_every_plate(tmp_path, evaldata, engine_worker):
    """Close-up plates of different vehicles follow each other across hard cuts, at nearly the
    same place in the picture: each is its own vehicle, none swallows the next."""
    street = _frames(evaldata / "videos" / "license_plate.mp4")
    toll = _frames(evaldata / "videos" / "cars.mp4")
    clip = street[70:140] + toll[0:50] + toll[100:135] + toll[290:339]
    video = write_video(tmp_path / "cuts.mp4", clip, 25)
    events = _run(tmp_path, video, engine_worker, sample=2, memory_decay=0)
    plates = [e["results"][0]["plate"] for e in events]
    for label in ("ls15ebc", "34a36837", "34a23126", "89c20339"):
        assert sum(fuzz.ratio(p, label) >= 85 for p in plates) == 1, (label, plates)
    assert len(plates) == 4, plates


def test_rotation_metadata_is_applied_before_analysis(tmp_path, evaldata, engine_worker):
    """A phone clip: pixels stored turned 90 degrees clockwise, display matrix says turn them
    back. Analysed sideways the detector finds no plate; turned, the car's plate is read."""
    street = _frames(evaldata / "videos" / "license_plate.mp4")[::2]
    turned = [cv2.rotate(cv2.resize(f, (960, 540)), cv2.ROTATE_90_CLOCKWISE) for f in street]
    video = write_video(tmp_path / "phone.mp4", turned, 15, rotation=90)
    with av.open(str(video)) as c:  # the copy really is stored sideways with a rotation
        f = next(c.decode(video=0))
        assert (f.width, f.height, f.rotation) == (540, 960, 90)
    events = _run(tmp_path, video, engine_worker)
    assert [e["results"][0]["plate"] for e in events] == ["ls15ebc"]
    assert events[0]["image_width"] == 960 and events[0]["image_height"] == 540


def test_scene_check_from_the_shared_thumbnail_finds_the_same_cut(evaldata):
    # The reader hands the scene check and the motion gate one grey thumbnail per frame; the
    # scene check from it must find what it finds from the whole frame: the one cut inside
    # cars.mp4 and none in license_plate.mp4.
    import numpy as np
    from av.video.reformatter import VideoReformatter

    from stream.motion import THUMB_WIDTH, thumbnail_height
    from stream.sources.reader import to_grey_thumbnail
    from stream.tracking.scene import SceneChange

    for name, cuts in (("cars.mp4", 1), ("license_plate.mp4", 0)):
        whole, shared, scaler = SceneChange(), SceneChange(), VideoReformatter()
        a, b = [], []
        with av.open(str(evaldata / "videos" / name)) as c:
            for i, f in enumerate(c.decode(video=0)):
                if i % 2 == 0:
                    img = f.to_ndarray(format="bgr24")
                    h, w = img.shape[:2]
                    a.append(whole.fraction(img))
                    b.append(shared.fraction(img, to_grey_thumbnail(
                        scaler, f, THUMB_WIDTH, thumbnail_height(w, h))))
        a, b = np.array(a), np.array(b)
        assert np.abs(a - b).max() < 0.01, name
        assert np.count_nonzero(a >= whole.min_fraction) == cuts, name
        assert list(np.nonzero(b >= shared.min_fraction)[0]) == list(
            np.nonzero(a >= whole.min_fraction)[0]), name


def test_frames_shed_still_go_through_the_scene_check(evaldata):
    """A camera whose decoding runs behind sheds every other sampled frame; the scene check
    still compares each sampled frame with the one before it, so the frames it puts carry
    the cuts found at the configured rate (compared two apart, a close car passes for a cut:
    each false cut would end the tracks in view)."""
    from stream.config import CameraConfig
    from tests.stream.helpers import read_to_end

    cam = CameraConfig(name="toll", url=str(evaldata / "videos" / "cars.mp4"), realtime=False,
                       fps=5)
    _, whole = read_to_end(cam, lambda f: f.cut)
    shed = {"n": 0}

    def every_other(reader):
        def _shed(lag):
            shed["n"] += 1
            return shed["n"] % 2 == 0
        reader._shed = _shed  # as if decoding ran behind for the whole clip

    reader, halved = read_to_end(cam, lambda f: f.cut, on_start=every_other)
    assert reader.stats.shed == len(whole) - len(halved) > 20
    assert 1 <= sum(halved) <= sum(whole), (sum(halved), sum(whole))
    # what comparing only the frames put would give: more cuts than there are
    slow = CameraConfig(name="toll", url=cam.url, realtime=False, fps=2.5)
    _, apart = read_to_end(slow, lambda f: f.cut)
    assert sum(apart) > sum(whole)
