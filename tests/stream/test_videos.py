"""Both labelled sample videos through the real pipeline: one event per vehicle, right text."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from rapidfuzz import fuzz

from stream.pipeline import Pipeline
from stream.wire import CSV_HEADER
from tests.stream.helpers import make_config, read_jsonl, wait_for

OVERLAY = "14b02819t"  # burned-in toll text in cars.mp4, not a plate of a visible vehicle


def test_sample_videos_give_one_event_per_labelled_plate(tmp_path, evaldata, video_labels,
                                                         engine_worker):
    status = check_sample_videos(tmp_path, evaldata, video_labels, engine_worker)
    toll = status["cameras"]["toll"]
    assert toll["frames_motion_cropped"] == 0  # motion_crop is off
    assert toll["frames_around_plates"] == toll["frames_between"] == 0  # detect_interval 0


def test_motion_crop_gives_the_same_events(tmp_path, evaldata, video_labels, engine_worker):
    """Detecting only where the frame moved (and around the plates last seen), at the frame's
    scale: the same events; most moving frames of the toll video are cropped."""
    status = check_sample_videos(tmp_path, evaldata, video_labels, engine_worker,
                                 motion_crop=True)
    toll = status["cameras"]["toll"]
    assert toll["frames_motion_cropped"] > toll["frames_analysed"] / 2, toll
    assert 0.2 < toll["motion_crop_share"] < 0.7, toll


@pytest.mark.parametrize("interval", [1, 2])
def test_detect_interval_gives_the_same_events(tmp_path, evaldata, video_labels, engine_worker,
                                               interval):
    """``detect_interval``: whole-frame detection on every (interval + 1)th analysed frame; on
    those between, only around the plates of the frame before, or nothing where it had none.
    The same events, one per labelled plate. (min_score 0.4: a far plate cut by the street
    video's right edge reads 0.33-0.34 at best, and whether one read passes 0.3 depends on
    which frames are searched whole.)"""
    status = check_sample_videos(tmp_path, evaldata, video_labels, engine_worker,
                                 detect_interval=interval, min_score=0.4)
    for cam in status["cameras"].values():
        assert cam["frames_around_plates"] > 0 and cam["frames_between"] > 0, cam
        # at most `interval` frames between two whole ones
        whole = cam["frames_analysed"] - cam["frames_around_plates"]
        assert cam["frames_around_plates"] + cam["frames_between"] <= interval * (whole + 1), cam


def check_sample_videos(tmp_path, evaldata, video_labels, engine_worker, **defaults) -> dict:
    """Both labelled videos through the pipeline (camera ``defaults`` added): one event per
    labelled plate with the right text and nothing else. Returns the pipeline's status."""
    cfg = make_config(tmp_path, {
        "defaults": {"realtime": False, "outputs": ["jsonl", "csv", "images"],
                     "memory_decay": 300, **defaults},
        "cameras": {
            "toll": {"url": str(evaldata / "videos" / "cars.mp4")},
            "street": {"url": str(evaldata / "videos" / "license_plate.mp4")},
        },
        "outputs": {
            "jsonl": {"type": "jsonl", "file": "{camera_id}.jsonl"},
            "csv": {"type": "csv", "file": "{camera_id}_{date}.csv"},
            "images": {"type": "images", "dir": "images", "image": "plate"},
        },
    })
    with Pipeline(cfg, engine_worker) as p:
        assert wait_for(p.done, 180), p.status()
        assert p.wait_delivered(30), p.status()
        status = p.status()
    out = Path(cfg.output_dir)
    reads = {}
    for cam, video in (("toll", "cars.mp4"), ("street", "license_plate.mp4")):
        events = read_jsonl(out / f"{cam}.jsonl")
        plates = [e["results"][0]["plate"] for e in events]
        reads[cam] = plates
        labels = [p["text"].lower() for p in video_labels[video]["plates"]]
        for label in labels:
            matching = [t for t in plates if fuzz.ratio(t, label) >= 85]
            assert len(matching) == 1, (label, plates)
        # No other events: every event is one of the labelled vehicles, never the overlay.
        assert all(max(fuzz.ratio(t, lab) for lab in labels) >= 85 for t in plates), plates
        assert all(fuzz.ratio(t, OVERLAY) < 70 for t in plates), plates
        for e in events:
            r = e["results"][0]
            assert e["camera_id"] == cam and e["event_id"] and e["timestamp"].endswith("Z")
            assert r["source_url"].endswith(video) and r["position_sec"] >= 0
            assert r["direction"] is None or 0 <= r["direction"] < 360
        # The labelled time window contains the event's best frame.
        for e in events:
            r = e["results"][0]
            lab = max(video_labels[video]["plates"],
                      key=lambda p: fuzz.ratio(p["text"].lower(), r["plate"]))
            assert lab["first_seen_sec"] - 0.5 <= r["position_sec"] <= lab["last_seen_sec"] + 0.5
        for e in events:  # the plate crop of each event, named like Stream's screenshots
            assert (out / "images" / e["filename"]).read_bytes()[:2] == b"\xff\xd8"
        rows = list(csv.reader(next(out.glob(f"{cam}_*.csv")).open()))
        assert tuple(rows[0]) == CSV_HEADER
        assert [r[1] for r in rows[1:]] == plates
    print("event reads:", reads)
    assert status["cameras"]["toll"]["frames_decoded"] == 339
    assert status["cameras"]["street"]["frames_decoded"] == 140
    assert status["cameras"]["toll"]["frames_dropped"] == 0  # realtime: false never drops
    return status


def test_plates_outside_the_zone_make_no_event(tmp_path, evaldata, engine_worker):
    cfg = make_config(tmp_path, {
        "cameras": {"street": {
            "url": str(evaldata / "videos" / "license_plate.mp4"), "realtime": False,
            "sample": 5, "outputs": ["jsonl"],
            "zones": [[0, 0], [400, 0], [400, 200], [0, 200]],  # sky, away from the car
        }},
        "outputs": {"jsonl": {"type": "jsonl", "file": "{camera_id}.jsonl"}},
    })
    with Pipeline(cfg, engine_worker) as p:
        assert wait_for(p.done, 90), p.status()
        assert p.status()["cameras"]["street"]["frames_analysed"] > 10
    assert read_jsonl(Path(cfg.output_dir) / "street.jsonl") == []


def test_sample_videos_on_openvino(tmp_path, evaldata, video_labels, openvino_worker):
    """The same events, right text and one per vehicle, with the models on OpenVINO."""
    assert openvino_worker.recognizer.backend_name.startswith("openvino:CPU:")
    check_sample_videos(tmp_path, evaldata, video_labels, openvino_worker)


def test_crops_are_off_where_each_frame_needs_its_vehicles(tmp_path, evaldata,
                                                                engine_worker):
    """``detection_rule: strict`` keeps a plate only inside a vehicle found on the same call
    and ``detection_mode: vehicle`` reports vehicles: a crop could cut them, so those cameras
    detect on the whole frame, with ``motion_crop`` or ``detect_interval`` (and with
    ``motion_crop`` without the motion gate)."""
    from stream.analysis import CameraAnalyzer
    from stream.sources.frames import FrameSlot

    url = str(evaldata / "videos" / "cars.mp4")
    on = {"url": url, "motion_crop": True, "detect_interval": 1}
    cfg = make_config(tmp_path, {"cameras": {
        "default": {"url": url},
        "on": on,
        "strict": {**on, "config": {"detection_rule": "strict"}},
        "vehicles": {**on, "config": {"detection_mode": "vehicle"}},
        "no_gate": {**on, "motion": False},
    }})
    analyzers = {name: CameraAnalyzer(cam, FrameSlot(), engine_worker, lambda e: None)
                 for name, cam in cfg.cameras.items()}
    assert {name: a._motion_crop for name, a in analyzers.items()} == {
        "default": False, "on": True, "strict": False, "vehicles": False, "no_gate": False}
    # detect_interval needs no motion gate
    assert {name: a._interval for name, a in analyzers.items()} == {
        "default": 0, "on": 1, "strict": 0, "vehicles": 0, "no_gate": 1}


def test_crops_stay_inside_the_zone(tmp_path, evaldata, engine_worker):
    """With zones, ``motion_crop`` and ``detect_interval`` crop inside the zones' box (its aspect,
    its scale): the car's plate in the zone is one event with the right text, and the far plate
    at the frame's right edge, outside the zone, is none."""
    cfg = make_config(tmp_path, {
        "cameras": {"street": {
            "url": str(evaldata / "videos" / "license_plate.mp4"), "realtime": False,
            "outputs": ["jsonl"], "motion_crop": True, "detect_interval": 1,
            "zones": [[300, 300], [1000, 300], [1000, 720], [300, 720]],  # the car's plate
        }},
        "outputs": {"jsonl": {"type": "jsonl", "file": "{camera_id}.jsonl"}},
    })
    with Pipeline(cfg, engine_worker) as p:
        assert wait_for(p.done, 90), p.status()
        assert p.wait_delivered(30), p.status()
        cam = p.status()["cameras"]["street"]
    # the moving car fills most of the zone: its motion crops go whole; the plate's do not
    assert cam["frames_around_plates"] > 0, cam
    events = read_jsonl(Path(cfg.output_dir) / "street.jsonl")
    assert [e["results"][0]["plate"] for e in events] == ["ls15ebc"]
    box = events[0]["results"][0]["box"]
    assert 300 <= box["xmin"] and box["xmax"] <= 1000 and box["ymin"] >= 300, box
