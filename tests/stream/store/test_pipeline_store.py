"""The real pipeline on the sample videos: every event lands in the store (with its crops),
carries known_plate, and outputs restricted with only: get the right events."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream.pipeline import Pipeline
from stream.store import EventQuery
from tests.stream.helpers import make_config, read_jsonl, wait_for


@pytest.fixture
def run_videos(tmp_path, evaldata, engine_worker):
    def run(extra: dict):
        (tmp_path / "staff.csv").write_text("plate,name,note\n34A36837,Sam,silver car\n")
        cfg = make_config(tmp_path, {
            "defaults": {"realtime": False, "sample": 2},
            "cameras": {
                "toll": {"url": str(evaldata / "videos" / "cars.mp4"),
                         "outputs": ["all", "staff_only", "unknown_only"]},
                "street": {"url": str(evaldata / "videos" / "license_plate.mp4")},
            },
            "known_plates": {"staff": {"file": "staff.csv"}, "banned": {"plates": ["LS15EBC"]}},
            "outputs": {
                "all": {"type": "jsonl", "file": "all.jsonl"},
                "staff_only": {"type": "jsonl", "file": "staff.jsonl",
                               "only": {"lists": ["staff"]}},
                "unknown_only": {"type": "jsonl", "file": "unknown.jsonl",
                                 "only": {"unknown": True}},
            },
            **extra,
        })
        with Pipeline(cfg, engine_worker) as p:
            assert wait_for(p.done, 180), p.status()
            assert p.wait_delivered(30), p.status()["outputs"]
            status = p.status()
            events = p.store.query(EventQuery(limit=100)).events if p.store else None
            paths = {e.event_id: (p.store.image_path(e.event_id, "vehicle"),
                                  p.store.image_path(e.event_id, "plate"))
                     for e in events or []}
        return cfg, status, events, paths

    return run


def test_every_event_is_stored_with_crops_and_known_plate(run_videos):
    cfg, status, stored, paths = run_videos({})
    out = Path(cfg.output_dir)
    toll = read_jsonl(out / "all.jsonl")
    assert status["outputs"]["store"]["type"] == "store"
    assert status["outputs"]["store"]["pending"] == 0
    assert status["outputs"]["store"]["backend"] == "sqlite"
    assert 0 < status["outputs"]["store"]["image_mb"] < 5
    # the store has every event of both cameras, though neither lists it in outputs
    assert {e.camera for e in stored} == {"toll", "street"}
    assert {e["event_id"] for e in toll} == {e.event_id for e in stored if e.camera == "toll"}
    for e in stored:
        v, p = paths[e.event_id]
        assert v is not None and v.read_bytes()[:2] == b"\xff\xd8"
        assert p is not None and p.read_bytes()[:2] == b"\xff\xd8"
        assert e.data["event_id"] == e.event_id and e.data["results"][0]["plate"] == e.plate
    by_plate = {e.plate: e for e in stored}
    assert by_plate["34a36837"].known_plate == {"list": "staff", "name": "Sam",
                                                 "plate": "34a36837", "distance": 0}
    assert by_plate["ls15ebc"].known_plate["list"] == "banned"
    # every event's JSON carries known_plate (null when unknown); only: routes them
    assert all("known_plate" in e for e in toll)
    staff = read_jsonl(out / "staff.jsonl")
    unknown = read_jsonl(out / "unknown.jsonl")
    assert [e["results"][0]["plate"] for e in staff] == ["34a36837"]
    assert {e["event_id"] for e in unknown} == {
        e["event_id"] for e in toll if e["known_plate"] is None}
    assert len(unknown) == len(toll) - 1


def test_store_off(run_videos):
    cfg, status, stored, _ = run_videos({"store": {"enabled": False}})
    assert stored is None and "store" not in status["outputs"]
    assert not (Path(cfg.state_dir) / "events.sqlite").exists()
    assert read_jsonl(Path(cfg.output_dir) / "staff.jsonl")  # known plates work without it
