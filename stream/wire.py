"""Plate Recognizer's wire format: the one module that turns typed results and events into
the JSON, webhook envelopes and CSV rows Plate Recognizer's clients read.

Nothing else builds these shapes: the engine returns vendor-neutral dataclasses
(``engine.result``), Stream events stay typed (``stream.events.PlateEvent``) until they are
spooled, and the HTTP API, webhooks, CSV, JSON Lines, MQTT and the store all take their
dicts from here. Golden files: ``../shared/api_examples`` (tests/stream/test_wire.py).

Shapes (each a function):
- ``snapshot_response``: ``POST /v1/plate-reader/`` body (optionally with ``usage``), in plate
  mode or ``detection_mode: vehicle`` (``vehicle_mode_result``);
- ``snapshot_webhook``: the Snapshot API's webhook ``{"hook": {..."image.done"}, "data"}``;
- ``event_json``: a Stream event (Snapshot result + ``timestamp_local``, ``event_id``,
  ``known_plate``, ``updated`` and per result ``direction``, ``source_url``, ``position_sec``);
- ``stream_webhook``: Stream's webhook ``{"hook": {..."recognition"}, "data": event}``;
  ``"recognition.update"`` for an update of an event already sent;
- with an image, either webhook goes as multipart/form-data: the envelope in the
  ``MULTIPART_JSON_FIELD`` text field and the JPEG in ``MULTIPART_IMAGE_FIELD``;
- ``csv_header`` / ``csv_rows``: Stream's plate-mode CSV (``columns="pr"``, 15 columns) or
  with the event id (``"pr+event_id"``); ``csv_vehicle_row``: Stream's vehicle-mode CSV.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from engine.result import (
    UNKNOWN_COLOR,
    UNKNOWN_MAKE_MODEL,
    UNKNOWN_ORIENTATION,
    Box,
    PlateRead,
    Recognition,
    Vehicle,
)

if TYPE_CHECKING:
    from stream.events import PlateEvent

__all__ = [
    "SNAPSHOT_HOOK_EVENT", "STREAM_HOOK_EVENT", "STREAM_UPDATE_EVENT", "MULTIPART_JSON_FIELD",
    "MULTIPART_IMAGE_FIELD", "CSV_HEADER", "CSV_VEHICLE_HEADER", "CsvColumns", "CSV_COLUMNS",
    "box_json", "plate_result", "vehicle_mode_result", "snapshot_response", "snapshot_webhook",
    "event_json", "stream_webhook", "csv_header", "csv_rows", "csv_row", "csv_vehicle_row",
    "event_time",
]

SNAPSHOT_HOOK_EVENT = "image.done"
STREAM_HOOK_EVENT = "recognition"
STREAM_UPDATE_EVENT = "recognition.update"
MULTIPART_JSON_FIELD = "json"
MULTIPART_IMAGE_FIELD = "upload"

CSV_HEADER = (
    "timestamp", "plate", "score", "dscore", "file", "box", "model_make", "color", "vehicle",
    "region", "orientation", "candidates", "source_url", "position_sec", "direction",
)
CSV_VEHICLE_HEADER = ("timestamp", "file", "source_url", "position_sec", "direction", "plate",
                      "vehicle")
CsvColumns = Literal["pr", "pr+event_id"]
CSV_COLUMNS: tuple[str, ...] = ("pr", "pr+event_id")

_NO_VEHICLE = Vehicle("Unknown", 0.0, Box(0, 0, 0, 0))


def _r(x: float) -> float:
    """Scores are rounded to 3 decimals, as the Snapshot API prints them."""
    return round(float(x), 3)


def box_json(b: Box) -> dict[str, int]:
    return {"xmin": b.xmin, "ymin": b.ymin, "xmax": b.xmax, "ymax": b.ymax}


def _mmc(read: PlateRead) -> dict[str, list[dict]]:
    """The mmc fields that were asked for (None in the read: not asked, key left out). The
    engine fills what no model answers with ``engine.result.UNKNOWN_*`` (never an empty
    list: clients index [0])."""
    out: dict[str, list[dict]] = {}
    if read.model_make is not None:
        out["model_make"] = [{"make": m.make, "model": m.model, "score": _r(m.score)}
                             for m in read.model_make]
    if read.color is not None:
        out["color"] = [{"color": c.color, "score": _r(c.score)} for c in read.color]
    if read.orientation is not None:
        out["orientation"] = [{"orientation": o.orientation, "score": _r(o.score)}
                              for o in read.orientation]
    return out


def plate_result(read: PlateRead) -> dict[str, Any]:
    """One ``results[]`` entry of the Snapshot response (plate mode)."""
    v = read.vehicle or _NO_VEHICLE
    return {
        "box": box_json(read.box),
        "plate": read.plate,
        "region": {"code": read.region.code, "score": _r(read.region.score)},
        "vehicle": {"score": _r(v.score), "type": v.type, "box": box_json(v.box)},
        "score": _r(read.score),
        "candidates": [{"score": _r(c.score), "plate": c.plate} for c in read.candidates],
        "dscore": _r(read.dscore),
        **_mmc(read),
    }


def _vehicle_props(read: PlateRead | None, mmc: bool) -> dict[str, list[dict]]:
    if not mmc:
        return {}
    mm = (read.model_make if read is not None else None) or UNKNOWN_MAKE_MODEL
    orient = (read.orientation if read is not None else None) or UNKNOWN_ORIENTATION
    color = (read.color if read is not None else None) or UNKNOWN_COLOR
    return {
        "make_model": [{"make": m.make, "model": m.model, "score": _r(m.score)} for m in mm],
        "orientation": [{"value": o.orientation, "score": _r(o.score)} for o in orient],
        "color": [{"value": c.color, "score": _r(c.score)} for c in color],
    }


def _vehicle_object(v: Vehicle, read: PlateRead | None, mmc: bool) -> dict[str, Any]:
    return {"type": v.type, "score": _r(v.score), "box": box_json(v.box),
            "props": _vehicle_props(read, mmc)}


def vehicle_mode_result(read: PlateRead, mmc: bool = False) -> dict[str, Any]:
    """One ``results[]`` entry with ``detection_mode: vehicle`` (Plate Recognizer's "Vehicle
    Only Response"): the plate and its vehicle (None when none was found) with ``props``;
    vehicle ``props`` only with mmc."""
    plate = {
        "type": "Plate", "score": _r(read.dscore), "box": box_json(read.box),
        "props": {
            "plate": [{"value": c.plate, "score": _r(c.score)} for c in read.candidates[:3]]
            or [{"value": read.plate, "score": _r(read.score)}],
            "region": [{"value": read.region.code, "score": _r(read.region.score)}],
        },
    }
    vehicle = _vehicle_object(read.vehicle, read, mmc) if read.vehicle is not None else None
    return {"plate": plate, "vehicle": vehicle}


def snapshot_response(rec: Recognition, *, usage: tuple[int, int] | None = None,
                      detection_mode: Literal["plate", "vehicle"] = "plate",
                      mmc: bool = False) -> dict[str, Any]:
    """The ``POST /v1/plate-reader/`` body; ``usage`` = (calls, max_calls) for the SDK. With
    ``detection_mode="vehicle"`` vehicles without a readable plate (``rec.vehicles``) are
    results too, and ``mmc`` says whether vehicle ``props`` are filled."""
    if detection_mode == "vehicle":
        results = [vehicle_mode_result(r, mmc) for r in rec.results]
        results += [{"plate": None, "vehicle": _vehicle_object(v, None, mmc)}
                    for v in rec.vehicles]
    else:
        results = [plate_result(r) for r in rec.results]
    d: dict[str, Any] = {
        "processing_time": round(rec.processing_time, 3),
        "results": results,
        "filename": rec.filename,
        "version": 1,
        "camera_id": rec.camera_id,
        "timestamp": rec.timestamp,
        "image_width": rec.image_width,
        "image_height": rec.image_height,
    }
    if usage is not None:
        d["usage"] = {"calls": usage[0], "max_calls": usage[1]}
    return d


def snapshot_webhook(response: dict[str, Any], target: str, hook_id: int) -> dict[str, Any]:
    """The Snapshot API's webhook body for one response, per target (``id``: its position)."""
    return {"hook": {"target": target, "id": hook_id, "event": SNAPSHOT_HOOK_EVENT},
            "data": response}


def event_json(ev: PlateEvent) -> dict[str, Any]:
    """A Stream event: the best read as a Snapshot response plus Stream's fields."""
    d = snapshot_response(ev.recognition)
    result = d["results"][0]
    result["direction"] = ev.direction
    result["source_url"] = ev.source_url
    if ev.position_sec is not None:
        result["position_sec"] = ev.position_sec
    d["timestamp_local"] = ev.timestamp_local
    d["event_id"] = ev.id
    d["known_plate"] = ev.known_plate
    if ev.updated:
        d["updated"] = True
    return d


def stream_webhook(event: dict[str, Any], target: str) -> dict[str, Any]:
    """Stream's webhook body for an event dict (``event_json``)."""
    return {
        "hook": {
            "target": target,
            "id": event.get("camera_id"),
            "event": STREAM_UPDATE_EVENT if event.get("updated") else STREAM_HOOK_EVENT,
            "filename": event.get("filename"),
        },
        "data": event,
    }


def event_time(event: dict[str, Any]) -> datetime:
    """An event's ``timestamp`` back as an aware datetime (Python >= 3.11 reads the "Z")."""
    return datetime.fromisoformat(str(event["timestamp"]))


def _cell(v: Any) -> str:
    return "" if v is None else str(v)


def csv_header(columns: CsvColumns = "pr") -> tuple[str, ...]:
    return (*CSV_HEADER, "event_id") if columns == "pr+event_id" else CSV_HEADER


def csv_row(event: dict[str, Any], result: dict[str, Any],
            columns: CsvColumns = "pr") -> list[str]:
    """One plate-mode CSV row (cells are Python reprs, as Stream writes them)."""
    row = [
        event_time(event).isoformat(sep=" ", timespec="microseconds"),
        result["plate"],
        _cell(result["score"]),
        _cell(result["dscore"]),
        "/" + str(event.get("filename") or ""),
        repr(result["box"]),
        repr(result.get("model_make", [])),
        repr(result.get("color", [])),
        repr(result["vehicle"]),
        repr(result["region"]),
        repr(result.get("orientation", [])),
        repr([{"plate": c["plate"]} for c in result.get("candidates", [])]),
        _cell(result.get("source_url")),
        _cell(result.get("position_sec")),
        _cell(result.get("direction")),
    ]
    return [*row, _cell(event.get("event_id"))] if columns == "pr+event_id" else row


def csv_rows(event: dict[str, Any], columns: CsvColumns = "pr") -> list[list[str]]:
    """The event's plate-mode CSV rows, one per result."""
    return [csv_row(event, r, columns) for r in event["results"]]


def csv_vehicle_row(event: dict[str, Any], vehicle_result: dict[str, Any],
                    stream: dict[str, Any]) -> list[str]:
    """One vehicle-mode CSV row: ``vehicle_result`` from ``vehicle_mode_result``, ``stream``
    the result's ``source_url``, ``position_sec`` and ``direction``."""
    return [
        event_time(event).isoformat(sep=" ", timespec="microseconds"),
        "/" + str(event.get("filename") or ""),
        _cell(stream.get("source_url")),
        _cell(stream.get("position_sec")),
        _cell(stream.get("direction")),
        repr(vehicle_result["plate"]),
        repr(vehicle_result["vehicle"]),
    ]
