"""stream/wire.py against every golden file in ../shared/api_examples: each is parsed into the
engine's typed results (or a Stream event), serialised by the wire module and compared value
by value (the golden's keys must all be there, with the golden's values)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine import result as er
from stream import wire
from stream.events import PlateEvent
from stream.http.errors import error_response
from stream.http.usage import UsageStore
from stream.sources.frames import Frame

API = Path(__file__).resolve().parents[3] / "shared" / "api_examples"


def subset(golden: Any, ours: Any, path: str = "") -> None:
    """Every key of ``golden`` is in ``ours`` with the same value (scores to 3 decimals)."""
    if isinstance(golden, dict):
        assert isinstance(ours, dict), path
        for k, v in golden.items():
            assert k in ours, f"{path}.{k} missing"
            subset(v, ours[k], f"{path}.{k}")
    elif isinstance(golden, list):
        assert isinstance(ours, list) and len(ours) == len(golden), path
        for i, (g, o) in enumerate(zip(golden, ours, strict=True)):
            subset(g, o, f"{path}[{i}]")
    elif isinstance(golden, float):
        assert ours == pytest.approx(golden, abs=5e-4), path
    else:
        assert ours == golden, path


def _box(d: dict) -> er.Box:
    return er.Box(d["xmin"], d["ymin"], d["xmax"], d["ymax"])


def read_from(r: dict) -> er.PlateRead:
    """A plate-mode ``results[]`` entry as the engine's typed read."""
    v = r.get("vehicle")
    return er.PlateRead(
        box=_box(r["box"]), plate=r["plate"], score=r["score"], dscore=r["dscore"],
        region=er.Region(**r["region"]) if "region" in r else er.Region("", 0.0),
        vehicle=er.Vehicle(v["type"], v["score"], _box(v["box"])) if v else None,
        candidates=tuple(er.Candidate(c["plate"], c["score"]) for c in r.get("candidates", ())),
        model_make=tuple(er.MakeModel(**m) for m in r["model_make"]) if "model_make" in r else None,
        color=tuple(er.ColorScore(**c) for c in r["color"]) if "color" in r else None,
        orientation=(tuple(er.OrientationScore(**o) for o in r["orientation"])
                     if "orientation" in r else None),
    )


def rec_from(d: dict, read=read_from) -> er.Recognition:
    return er.Recognition(
        tuple(read(r) for r in d["results"]), d.get("processing_time", 0.0),
        d.get("image_width", 0), d.get("image_height", 0), d.get("filename"),
        d.get("camera_id"), d.get("timestamp"))


def load(name: str) -> Any:
    return json.loads((API / name).read_text())


def check_snapshot(name: str) -> None:
    golden = load(name)
    ours = wire.snapshot_response(rec_from(golden))
    # Genuine Plate Recognizer fields we do not produce (no model for them)
    for r in golden["results"]:
        r.pop("direction_score", None)
        r.pop("direction", None)
    subset(golden, ours)
    json.dumps(ours)


def check_cli_output(name: str) -> None:
    for golden in load(name):
        subset(golden, wire.snapshot_response(rec_from(golden)))


def check_sdk_usage(name: str) -> None:
    golden = load(name)
    u = golden["usage"]
    subset(golden, wire.snapshot_response(rec_from(golden), usage=(u["calls"], u["max_calls"])))


def read_from_vehicle_mode(r: dict) -> er.PlateRead:
    p, v = r["plate"], r["vehicle"]
    props = v["props"]
    return er.PlateRead(
        box=_box(p["box"]), plate=p["props"]["plate"][0]["value"],
        score=p["props"]["plate"][0]["score"], dscore=p["score"],
        region=er.Region(p["props"]["region"][0]["value"], p["props"]["region"][0]["score"]),
        vehicle=er.Vehicle(v["type"], v["score"], _box(v["box"])),
        model_make=tuple(er.MakeModel(**m) for m in props["make_model"]),
        color=tuple(er.ColorScore(c["value"], c["score"]) for c in props["color"]),
        orientation=tuple(er.OrientationScore(o["value"], o["score"])
                          for o in props["orientation"]),
    )


def check_vehicle_mode(name: str) -> None:
    golden = load(name)
    ours = wire.snapshot_response(rec_from(golden, read_from_vehicle_mode),
                                  detection_mode="vehicle", mmc=True)
    subset(golden, ours)
    bare = wire.snapshot_response(rec_from(golden, read_from_vehicle_mode),
                                  detection_mode="vehicle")
    assert bare["results"][0]["vehicle"]["props"] == {}  # vehicle props only with mmc
    lone = er.Recognition((), 1.0, 10, 10, vehicles=(er.Vehicle("Sedan", 0.5, er.Box(1, 2, 3, 4)),))
    only = wire.snapshot_response(lone, detection_mode="vehicle", mmc=True)["results"]
    assert only[0]["plate"] is None and only[0]["vehicle"]["props"]["make_model"] == [
        {"make": "generic", "model": "Unknown", "score": 0.0}]  # never an empty list


def check_snapshot_webhook(name: str) -> None:
    golden = load(name)
    response = wire.snapshot_response(rec_from(golden["data"]))
    subset(golden, wire.snapshot_webhook(response, golden["hook"]["target"],
                                         golden["hook"]["id"]))


def event_from(data: dict, *, known: dict | None = None, updated: bool = False) -> PlateEvent:
    r = data["results"][0]
    return PlateEvent(
        id="e1", camera_id=data["camera_id"], recognition=rec_from(data), frame=None,
        timestamp_local=data["timestamp_local"], direction=r["direction"],
        source_url=r["source_url"], position_sec=r["position_sec"], known_plate=known,
        updated=updated)


def check_stream_webhook(name: str) -> None:
    golden = load(name)
    golden["data"].pop("timestamp_camera", None)  # a newer Stream's field, always null there
    ev = event_from(golden["data"])
    ours = wire.stream_webhook(wire.event_json(ev), golden["hook"]["target"])
    subset(golden, ours)
    assert ours["data"]["event_id"] == "e1" and ours["data"]["known_plate"] is None
    assert "updated" not in ours["data"]


def sample_read() -> er.PlateRead:
    """The plate of the constructed CSV samples (and of the Stream webhook sample)."""
    return er.PlateRead(
        box=er.Box(337, 270, 412, 305), plate="pl8rec", score=0.902, dscore=0.757,
        region=er.Region("us-ca", 0.179),
        vehicle=er.Vehicle("Sedan", 0.709, er.Box(155, 71, 590, 373)),
        candidates=(er.Candidate("pl8rec", 0.902), er.Candidate("plbrec", 0.758)),
        model_make=(er.MakeModel("Porsche", "911", 0.43),), color=(er.ColorScore("red", 0.699),),
        orientation=(er.OrientationScore("Rear", 0.883),),
    )


def csv_event() -> PlateEvent:
    rec = er.Recognition((sample_read(),), 10.0, 640, 480,
                      "camera-1_screenshots/25-08-11/16-42-58.740143.jpg", "camera-1",
                      "2025-08-11T16:42:58.740143Z")
    return PlateEvent("e1", "camera-1", rec, None, timestamp_local=rec.timestamp or "",
                      direction=210, source_url="/user-data/video.mp4", position_sec=23.47)


def check_csv_plate_mode(name: str) -> None:
    with open(API / name, newline="") as f:
        header, expected = list(csv.reader(f))
    assert tuple(header) == wire.csv_header() == wire.CSV_HEADER
    assert wire.csv_rows(wire.event_json(csv_event())) == [expected]


def check_csv_vehicle_mode(name: str) -> None:
    with open(API / name, newline="") as f:
        header, expected = list(csv.reader(f))
    assert tuple(header) == wire.CSV_VEHICLE_HEADER
    data = wire.event_json(csv_event())
    one_candidate = sample_read().replace(candidates=(er.Candidate("pl8rec", 0.902),))
    row = wire.csv_vehicle_row(data, wire.vehicle_mode_result(one_candidate, mmc=True),
                               data["results"][0])
    assert row == expected


def check_statistics(name: str) -> None:
    golden = load(name)
    ours = UsageStore(Path("/nonexistent/usage.json")).statistics()
    assert set(ours) == set(golden) and set(ours["usage"]) == set(golden["usage"])


def check_throttled(name: str) -> None:
    golden = load(name)
    resp = error_response(429, "Request was throttled.", {"Retry-After": "1"})
    assert set(json.loads(resp.text)) == set(golden)


GOLDEN = {
    "snapshot_cloud_plate_reader_response.json": check_snapshot,
    "snapshot_response_real_SurvisionSnapshot.json": check_snapshot,
    "snapshot_response_real_SurvisionSnapshotX2.json": check_snapshot,
    "snapshot_response_real_GenetecSnapshot.json": check_snapshot,
    "snapshot_cloud_response_from_climax777_test.json": check_snapshot,
    "plate_recognition_cli_output_from_readme.json": check_cli_output,
    "sdk_plate_reader_response.json": check_sdk_usage,
    "snapshot_cloud_plate_reader_response_detection_mode_vehicle.json": check_vehicle_mode,
    "snapshot_webhook_payload.json": check_snapshot_webhook,
    "stream_webhook_payload_from_webhook_tester.json": check_stream_webhook,
    "stream_webhook_payload_from_front_rear_tester.json": check_stream_webhook,
    "stream_csv_plate_mode.constructed.csv": check_csv_plate_mode,
    "stream_csv_vehicle_mode.constructed.csv": check_csv_vehicle_mode,
    "cloud_statistics_response.json": check_statistics,
    "error_429_throttled.json": check_throttled,
    # GET /info/ is not an event or result shape: tests/stream/http/test_http_api.py
    "sdk_info_response.json": None,
}


@pytest.mark.parametrize("name", sorted(p.name for p in API.iterdir()
                                        if p.suffix in (".json", ".csv")))
def test_every_golden_file(name):
    assert name in GOLDEN, f"{name}: a new golden file; say which wire shape it checks"
    if GOLDEN[name] is not None:
        GOLDEN[name](name)


def test_event_fields_known_plate_and_update():
    known = {"list": "staff", "name": "Ann", "plate": "pl8rec", "distance": 0}
    ev = event_from(load("stream_webhook_payload_from_webhook_tester.json")["data"],
                    known=known, updated=True)
    data = wire.event_json(ev)
    assert data["known_plate"] == known and data["updated"] is True
    hook = wire.stream_webhook(data, "http://x/")
    assert hook["hook"]["event"] == wire.STREAM_UPDATE_EVENT and hook["data"]["event_id"] == "e1"
    row = wire.csv_rows(data, "pr+event_id")[0]
    assert wire.csv_header("pr+event_id")[-1] == "event_id" and row[-1] == "e1"
    assert len(row) == len(wire.CSV_HEADER) + 1


def test_mmc_fields_only_when_asked_and_no_vehicle_shape():
    read = er.PlateRead(er.Box(1, 2, 3, 4), "abc", 0.5, 0.6, er.Region("fr", 0.7))
    r = wire.plate_result(read)
    assert "model_make" not in r and "color" not in r and "orientation" not in r
    assert r["vehicle"] == {"score": 0.0, "type": "Unknown",
                            "box": {"xmin": 0, "ymin": 0, "xmax": 0, "ymax": 0}}
    asked = wire.plate_result(read.replace(model_make=(), color=(), orientation=()))
    assert asked["model_make"] == [] and asked["orientation"] == [] and asked["color"] == []


def test_event_json_from_a_built_event_keeps_stream_fields():
    frame = Frame(np.zeros((48, 64, 3), np.uint8), 1.0, None, None, 1, 1.0)
    ev = PlateEvent("id", "cam", er.Recognition((sample_read(),), 1.0, 64, 48), frame,
                    direction=None, source_url="rtsp://h/s")
    r = wire.event_json(ev)["results"][0]
    assert r["direction"] is None and r["source_url"] == "rtsp://h/s"
    assert "position_sec" not in r  # live cameras have no position
