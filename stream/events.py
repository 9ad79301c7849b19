"""Stream events: a track's best read with Stream's fields, typed until it is spooled.

``stream.wire.event_json`` turns an event into the JSON that CSV, JSON Lines, webhooks, MQTT
and the store carry (``PlateEvent.data``). Stream's fields: ``timestamp_local``, ``event_id``
(stable, so receivers can drop duplicates after a resend), ``known_plate`` and ``updated``; for
the result ``direction``, ``source_url`` (no credentials) and, for files, ``position_sec``.
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
from stream import wire

if TYPE_CHECKING:
    from stream.config import CameraConfig
    from stream.sources.frames import Frame
    from stream.tracking import Observation, Track

__all__ = ["PlateEvent", "build_event", "event_image", "iso_utc"]

_EVENT_NS = uuid.UUID("5c0e3a9e-6b7d-4a53-9d7b-2f1f3c4b7a10")


@dataclass(frozen=True, slots=True, eq=False)
class PlateEvent:
    """One event. ``recognition`` holds the one best read with the frame's metadata
    (``filename``, ``camera_id``, ``timestamp``).

    Attributes:
        direction: degrees of travel (0 = right, 90 = up), None when it barely moved.
        source_url: the camera URL without credentials.
        position_sec: seconds into a video file (None for live cameras).
        known_plate: ``{list, name, plate, distance}`` of a known-plates match, or None.
        updated: this event replaces one already sent with the same ``id``.
    """

    id: str
    camera_id: str
    recognition: Recognition
    frame: Frame | None
    timestamp_local: str = ""
    direction: int | None = None
    source_url: str = ""
    position_sec: float | None = None
    known_plate: dict[str, Any] | None = None
    updated: bool = False

    @property
    def plate(self) -> str:
        return self.recognition.results[0].plate

    @property
    def data(self) -> dict[str, Any]:
        """The Stream event JSON (``stream.wire.event_json``)."""
        return wire.event_json(self)


def iso_utc(dt: datetime) -> str:
    """``2025-08-11T16:42:58.740143Z`` as Plate Recognizer writes timestamps."""
    return dt.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _local(dt: datetime, tz: str) -> str:
    if tz == "UTC":
        return iso_utc(dt)
    return dt.astimezone(zoneinfo.ZoneInfo(tz)).isoformat(timespec="microseconds")


def build_event(cam: CameraConfig, track: Track, best: Observation, *,
                timezone: str = "UTC") -> PlateEvent:
    """The event of one track; ``best.frame`` is the analysis Frame of the best read."""
    frame: Frame | None = best.frame
    wall = frame.wall if frame is not None else datetime.now(UTC)
    read = best.read
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
    )
    position = frame.position if frame is not None else None
    return PlateEvent(
        event_id, cam.name, rec, frame, timestamp_local=_local(wall, timezone),
        direction=track.direction(), source_url=cam.safe_url,
        position_sec=round(position, 3) if position is not None else None,
    )


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
