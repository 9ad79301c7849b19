"""Vehicle details once per vehicle: the events are those of full recognition on every frame."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.recognizer import OCR_VIEWS
from stream import analysis
from stream.pipeline import Pipeline
from tests.stream.helpers import make_config, read_jsonl, wait_for


def _events(tmp_path: Path, evaldata: Path, worker, per_vehicle: bool, monkeypatch) -> dict:
    monkeypatch.setattr(analysis, "PER_VEHICLE_ENRICH", per_vehicle)
    tmp_path.mkdir()
    cfg = make_config(tmp_path, {
        # motion_crop off: the full per-frame calls would find vehicles on the crops
        "defaults": {"realtime": False, "outputs": ["jsonl"], "memory_decay": 300, "sample": 2,
                     "motion_crop": False},
        "cameras": {
            "toll": {"url": str(evaldata / "videos" / "cars.mp4"), "mmc": True},
            "street": {"url": str(evaldata / "videos" / "license_plate.mp4")},
        },
        "outputs": {"jsonl": {"type": "jsonl", "file": "{camera_id}.jsonl"}},
    })
    with Pipeline(cfg, worker) as p:
        assert wait_for(p.done, 240), p.status()
        assert p.wait_delivered(30), p.status()
        status = p.status()
    out = {cam: read_jsonl(Path(cfg.output_dir) / f"{cam}.jsonl") for cam in ("toll", "street")}
    return {"events": out, "status": status}


def _comparable(event: dict) -> dict:
    # processing_time, and the wall-clock times of a file source (now + position), differ
    e = {k: v for k, v in event.items()
         if k not in ("processing_time", "timestamp", "timestamp_local", "filename")}
    results = []
    for r in e.pop("results"):
        r = dict(r)
        r["score"] = round(r["score"], 2)  # OCR batch composition moves the 3rd decimal
        r["candidates"] = [c["plate"] for c in r["candidates"]]
        results.append(r)
    e["results"] = results
    return e


def test_events_identical_with_vehicle_details_once_per_vehicle(tmp_path, evaldata,
                                                                 engine_worker, monkeypatch):
    # per-frame (light) reads use the first of the OCR's views; with one view a full read of
    # every frame is comparable (engine/recognizer.py OCR_VIEWS)
    monkeypatch.setattr("engine.recognizer.OCR_VIEWS", OCR_VIEWS[:1])
    before = _events(tmp_path / "full", evaldata, engine_worker, False, monkeypatch)
    after = _events(tmp_path / "light", evaldata, engine_worker, True, monkeypatch)
    for cam in ("toll", "street"):
        a, b = before["events"][cam], after["events"][cam]
        assert a, cam
        assert [_comparable(e) for e in a] == [_comparable(e) for e in b], cam
    toll = after["events"]["toll"]
    assert any(e["results"][0]["vehicle"]["type"] for e in toll)  # enriched: vehicles present
    assert all(len(e["results"][0]["candidates"]) >= 1 for e in toll)
    st = after["status"]["cameras"]["toll"]
    assert st["motion_skipped_fraction"] == pytest.approx(
        st["frames_skipped_still"] / max(1, st["frames_skipped_still"] + st["frames_analysed"]),
        abs=0.01)


def test_zone_detection_sees_only_the_zone_area(tmp_path, evaldata, engine_worker, monkeypatch):
    """With zones the engine gets the zones' bounding box (+ margin); boxes come back in
    frame pixels, and the event's vehicle is attached by the winner's enrich."""
    shapes = []
    submit = engine_worker.submit

    def spy(image, *a, **kw):
        shapes.append(image.shape)
        return submit(image, *a, **kw)

    monkeypatch.setattr(engine_worker, "submit", spy)
    zone = [[400, 300], [900, 300], [900, 600], [400, 600]]
    cfg = make_config(tmp_path, {
        "cameras": {"street": {
            "url": str(evaldata / "videos" / "license_plate.mp4"), "realtime": False,
            "sample": 3, "outputs": ["jsonl"], "zones": [zone], "motion": False,
        }},
        "outputs": {"jsonl": {"type": "jsonl", "file": "{camera_id}.jsonl"}},
    })
    with Pipeline(cfg, engine_worker) as p:
        assert wait_for(p.done, 120), p.status()
        assert p.wait_delivered(30), p.status()
    m = analysis.ZONE_MARGIN
    assert shapes and set(shapes) == {(300 + 2 * m, 500 + 2 * m, 3)}
    events = read_jsonl(Path(cfg.output_dir) / "street.jsonl")
    assert [e["results"][0]["plate"] for e in events] == ["ls15ebc"]
    r = events[0]["results"][0]
    assert 400 <= (r["box"]["xmin"] + r["box"]["xmax"]) / 2 <= 900
    assert 300 <= (r["box"]["ymin"] + r["box"]["ymax"]) / 2 <= 600
    assert events[0]["image_width"] == 1280
    assert r["vehicle"]["type"] and r["vehicle"]["box"]["xmin"] >= 400 - m
