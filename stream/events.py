"""Stream events: the Snapshot result of a track's best read plus Stream's fields.

An event is a ``Recognition`` with one result; ``data`` (its ``to_dict()``) is what CSV, JSON
Lines and webhooks carry. Added fields: top-level ``timestamp_local`` and ``event_id`` (stable,
so receivers can drop duplicates after a resend); per result ``direction``, ``source_url``
(no credentials) and, for files, ``position_sec``.
"""

from __future__ import annotations

import uuid
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import cv2

from engine import Recognition
from engine.geometry import crop

if TYPE_CHECKING:
    from stream.config import CameraConfig
    from stream.sources.frames import Frame
    from stream.tracking import Observation, Track

__all__ = [
    "PlateEvent", "build_event", "webhook_payload", "CSV_HEADER", "csv_row", "event_image",
    "iso_utc",
]

CSV_HEADER = (
    "timestamp", "plate", "score", "dscore", "file", "box", "model_make", "color", "vehicle",
    "region", "orientation", "candidates", "source_url", "position_sec", "direction",
)
_EVENT_NS = uuid.UUID("5c0e3a9e-6b7d-4a53-9d7b-2f1f3c4b7a10")


@dataclass(frozen=True, slots=True, eq=False)
class PlateEvent:
    id: str
    camera_id: str
    recognition: Recognition
    frame: Frame | None

    @property
    def plate(self) -> str:
        return self.recognition.results[0].plate

    @property
    def data(self) -> dict[str, Any]:
        return self.recognition.to_dict()


def iso_utc(dt: datetime) -> str:
    """``2025-08-11T16:42:58.740143Z`` as Plate Recognizer writes timestamps."""
    return dt.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def event_time(data: dict[str, Any]) -> datetime:
    """An event's ``timestamp`` (written by ``iso_utc``) back as an aware datetime."""
    return datetime.fromisoformat(str(data["timestamp"]))  # Python >= 3.11 reads the "Z"


def _local(dt: datetime, tz: str) -> str:
    if tz == "UTC":
        return iso_utc(dt)
    return dt.astimezone(zoneinfo.ZoneInfo(tz)).isoformat(timespec="microseconds")


def build_event(cam: CameraConfig, track: Track, best: Observation, *,
                timezone: str = "UTC") -> PlateEvent:
    """The event of one track; ``best.frame`` is the analysis Frame of the best read."""
    frame: Frame | None = best.frame
    wall = frame.wall if frame is not None else datetime.now(UTC)
    extra: dict[str, Any] = {"direction": track.direction(), "source_url": cam.safe_url}
    if frame is not None and frame.position is not None:
        extra["position_sec"] = round(frame.position, 3)
    read = best.read.replace(extra=extra)
    first = track.observations[0]
    if first.frame is not None and first.frame.position is not None:
        first_key = f"{first.ts:.3f}"  # files: the same vehicle gets the same id on a re-run
    else:
        first_key = iso_utc(first.frame.wall) if first.frame is not None else f"{first.ts:.6f}"
    event_id = str(uuid.uuid5(_EVENT_NS, f"{cam.name}|{cam.safe_url}|{first_key}|{read.plate}"))
    h, w = frame.image.shape[:2] if frame is not None else (0, 0)
    rec = Recognition(
        results=(read,),
        processing_time=best.processing_time,
        image_width=w,
        image_height=h,
        filename=f"{cam.name}_screenshots/{wall.astimezone(UTC):%y-%m-%d/%H-%M-%S.%f}.jpg",
        camera_id=cam.name,
        timestamp=iso_utc(wall),
        extra={"timestamp_local": _local(wall, timezone), "event_id": event_id},
    )
    return PlateEvent(event_id, cam.name, rec, frame)


def webhook_payload(data: dict[str, Any], target: str) -> dict[str, Any]:
    """The Stream webhook body (``json`` field): ``{"hook": {...}, "data": {...}}``."""
    return {
        "hook": {
            "target": target,
            "id": data.get("camera_id"),
            "event": "recognition",
            "filename": data.get("filename"),
        },
        "data": data,
    }


def _cell(v: Any) -> str:
    return "" if v is None else str(v)


def csv_row(data: dict[str, Any], result: dict[str, Any]) -> list[str]:
    """One CSV row in Stream's plate-mode format (cells are Python reprs, as Stream writes)."""
    ts = event_time(data)
    return [
        ts.isoformat(sep=" ", timespec="microseconds"),
        result["plate"],
        _cell(result["score"]),
        _cell(result["dscore"]),
        "/" + str(data.get("filename") or ""),
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


def event_image(event: PlateEvent, kind: str) -> bytes | None:
    """JPEG of the event's best frame: ``vehicle`` crop (the plate's surroundings when no
    vehicle was found), ``plate`` crop, ``original`` frame; None for ``none``."""
    if kind == "none" or event.frame is None:
        return None
    image = event.frame.image
    read = event.recognition.results[0]
    if kind == "plate":
        image = crop(image, read.box.xyxy, 0.1, 0.1)
    elif kind == "vehicle":
        image = (crop(image, read.vehicle.box.xyxy) if read.vehicle
                 else crop(image, read.box.xyxy, 2.0, 2.0))
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return buf.tobytes() if ok else None
