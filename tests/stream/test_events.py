"""Event shape, CSV cells (checked against the constructed Stream CSV), JSONL, images."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from engine import (
    Box,
    Candidate,
    ColorScore,
    MakeModel,
    OrientationScore,
    PlateRead,
    Region,
    Vehicle,
)
from stream.config import CameraConfig
from stream.delivery import Item
from stream.events import build_event, event_image
from stream.sinks import CsvSink, ImageSink, JsonlSink, render_path
from stream.sources.frames import Frame
from stream.tracking import Observation, Track
from stream.wire import CSV_HEADER, csv_row, stream_webhook

API = Path(__file__).resolve().parents[3] / "shared" / "api_examples"
WALL = datetime(2025, 8, 11, 16, 42, 58, 740143, tzinfo=UTC)


def sample_read() -> PlateRead:
    """The plate of the api_examples Stream samples."""
    return PlateRead(
        box=Box(337, 270, 412, 305), plate="pl8rec", score=0.902, dscore=0.757,
        region=Region("us-ca", 0.179),
        vehicle=Vehicle("Sedan", 0.709, Box(155, 71, 590, 373)),
        candidates=(Candidate("pl8rec", 0.902), Candidate("plbrec", 0.758)),
        model_make=(MakeModel("Porsche", "911", 0.43),), color=(ColorScore("red", 0.699),),
        orientation=(OrientationScore("Rear", 0.883),),
    )


def sample_event(position: float | None = 23.47, url: str = "/user-data/video.mp4"):
    frame = Frame(np.zeros((480, 640, 3), np.uint8), 23.47, WALL, position, 1, 1.0)
    reads = [sample_read().replace(box=Box(200, 270, 275, 305), score=0.85), sample_read()]
    track = Track(1)
    for i, r in enumerate(reads):
        track.add(Observation(r, 23.0 + i, frame))
    cam = CameraConfig(url=url, name="camera-1")
    return build_event(cam, track, track.best())


def test_event_has_stream_fields_and_stable_id():
    ev = sample_event()
    d = ev.data
    assert d["camera_id"] == "camera-1" and d["timestamp"] == "2025-08-11T16:42:58.740143Z"
    assert d["timestamp_local"] == d["timestamp"]
    assert d["filename"] == "camera-1_screenshots/25-08-11/16-42-58.740143.jpg"
    r = d["results"][0]
    assert r["source_url"] == "/user-data/video.mp4" and r["position_sec"] == 23.47
    assert r["direction"] == 0  # moved right
    assert d["event_id"] == sample_event().data["event_id"]  # same vehicle, same id
    live = sample_event(position=None, url="rtsp://u:p@cam/s").data
    assert "position_sec" not in live["results"][0]
    assert live["results"][0]["source_url"] == "rtsp://cam/s"


def test_webhook_payload_matches_stream_sample():
    sample = json.loads((API / "stream_webhook_payload_from_webhook_tester.json").read_text())
    body = stream_webhook(sample_event().data, "http://127.0.0.1:8001/")
    assert set(body) == {"hook", "data"} and set(body["hook"]) == set(sample["hook"])
    assert body["hook"]["event"] == "recognition" and body["hook"]["id"] == "camera-1"
    assert set(sample["data"]) <= set(body["data"])
    assert set(sample["data"]["results"][0]) <= set(body["data"]["results"][0])


def test_csv_row_matches_the_constructed_stream_csv():
    with open(API / "stream_csv_plate_mode.constructed.csv", newline="") as f:
        header, expected = list(csv.reader(f))
    assert tuple(header) == CSV_HEADER
    data = sample_event().data
    data["results"][0]["direction"] = 210
    row = csv_row(data, data["results"][0])
    assert row[:4] == expected[:4]
    assert row[4] == "/camera-1_screenshots/25-08-11/16-42-58.740143.jpg" == expected[4]
    assert row[5:] == expected[5:]


def test_sinks_write_files(tmp_path):
    data = sample_event().data
    item = Item(1, "o", data["event_id"], data, b"\xff\xd8jpeg", data["filename"], 0, 0.0)
    with CsvSink("ev/{camera_id}_%y-%m-%d.csv", tmp_path) as s:
        s(item)
        s(item)
    rows = list(csv.reader((tmp_path / "ev" / "camera-1_25-08-11.csv").open()))
    assert tuple(rows[0]) == CSV_HEADER and len(rows) == 3
    with JsonlSink("ev/{camera_id}.jsonl", tmp_path) as s:
        s(item)
    assert json.loads((tmp_path / "ev" / "camera-1.jsonl").read_text()) == data
    with ImageSink(tmp_path / "img") as s:
        s(item)
    assert (tmp_path / "img" / data["filename"]).read_bytes() == b"\xff\xd8jpeg"


@pytest.mark.parametrize(("kind", "shape"), [
    ("original", (480, 640)), ("vehicle", (302, 435)), ("plate", (43, 91)), ("none", None),
])
def test_event_images(kind, shape):
    import cv2

    data = event_image(sample_event(), kind)
    if shape is None:
        assert data is None
        return
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert img.shape[:2] == shape


def test_render_path():
    when = datetime(2025, 1, 2, tzinfo=UTC)
    assert render_path("e/{camera_id}_{date}.csv", "g", when) == Path("e/g_2025-01-02.csv")
    assert render_path("/abs/%Y/{camera}.jsonl", "g", when, Path("/b")) == Path("/abs/2025/g.jsonl")
