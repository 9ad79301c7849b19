"""The typed result model: the single source of the Snapshot API JSON shape.

The HTTP API, webhooks, CSV and JSON Lines all serialise these objects through
``to_dict()``; nothing else builds Plate Recognizer JSON by hand.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Box",
    "Region",
    "Candidate",
    "Vehicle",
    "ColorScore",
    "MakeModel",
    "OrientationScore",
    "PlateRead",
    "Recognition",
]


def _r(x: float) -> float:
    """Scores are rounded to 3 decimals, as the Snapshot API prints them."""
    return round(float(x), 3)


@dataclass(frozen=True, slots=True)
class Box:
    """Integer pixel box, clamped to the frame; ``xmax``/``ymax`` are inclusive-ish edges."""

    xmin: int
    ymin: int
    xmax: int
    ymax: int

    @classmethod
    def from_xyxy(cls, xyxy: Any, width: int, height: int) -> Box:
        x1, y1, x2, y2 = (float(v) for v in xyxy)
        return cls(
            max(0, min(width, round(x1))),
            max(0, min(height, round(y1))),
            max(0, min(width, round(x2))),
            max(0, min(height, round(y2))),
        )

    @property
    def width(self) -> int:
        return self.xmax - self.xmin

    @property
    def height(self) -> int:
        return self.ymax - self.ymin

    def contains(self, other: Box, slack: int = 0) -> bool:
        return (
            self.xmin - slack <= other.xmin
            and self.ymin - slack <= other.ymin
            and other.xmax <= self.xmax + slack
            and other.ymax <= self.ymax + slack
        )

    def to_dict(self) -> dict[str, int]:
        return {"xmin": self.xmin, "ymin": self.ymin, "xmax": self.xmax, "ymax": self.ymax}


@dataclass(frozen=True, slots=True)
class Region:
    code: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "score": _r(self.score)}


@dataclass(frozen=True, slots=True)
class Candidate:
    plate: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"score": _r(self.score), "plate": self.plate}


@dataclass(frozen=True, slots=True)
class Vehicle:
    """Vehicle type is one of VEHICLE_TYPES in ``engine.vehicles``."""

    type: str
    score: float
    box: Box

    def to_dict(self) -> dict[str, Any]:
        return {"score": _r(self.score), "type": self.type, "box": self.box.to_dict()}


@dataclass(frozen=True, slots=True)
class ColorScore:
    color: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"color": self.color, "score": _r(self.score)}


@dataclass(frozen=True, slots=True)
class MakeModel:
    make: str
    model: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"make": self.make, "model": self.model, "score": _r(self.score)}


@dataclass(frozen=True, slots=True)
class OrientationScore:
    orientation: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"orientation": self.orientation, "score": _r(self.score)}


NO_VEHICLE = Vehicle("Unknown", 0.0, Box(0, 0, 0, 0))

# What Plate Recognizer answers when it does not know (never an empty list: clients index
# [0]); score 0 because no model here predicts these, and never an invented make.
UNKNOWN_MAKE_MODEL = (MakeModel("generic", "Unknown", 0.0),)
UNKNOWN_COLOR = (ColorScore("unknown", 0.0),)
UNKNOWN_ORIENTATION = (OrientationScore("Unknown", 0.0),)


@dataclass(frozen=True, slots=True)
class PlateRead:
    """One plate in one image.

    Attributes:
        box: plate box in image pixels.
        plate: text, lowercase alphanumerics (as the Snapshot API returns it).
        score: read confidence 0..1 (product-like mean of the character probabilities).
        dscore: detection confidence 0..1.
        region: region code (ISO 3166 alpha-2, or ``cc-state``) and its score.
        vehicle: the vehicle box containing the plate, or ``None`` when none was found.
        candidates: alternative readings, best first (the first is ``plate``).
        char_scores: per-character probability of ``plate``.
        model_make, color, orientation: only set when mmc was requested.
        extra: fields added downstream (Stream adds ``direction``, ``source_url``,
            ``position_sec``); serialised after the standard keys.
    """

    box: Box
    plate: str
    score: float
    dscore: float
    region: Region
    vehicle: Vehicle | None = None
    candidates: tuple[Candidate, ...] = ()
    char_scores: tuple[float, ...] = ()
    model_make: tuple[MakeModel, ...] | None = None
    color: tuple[ColorScore, ...] | None = None
    orientation: tuple[OrientationScore, ...] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def replace(self, **changes: Any) -> PlateRead:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "box": self.box.to_dict(),
            "plate": self.plate,
            "region": self.region.to_dict(),
            "vehicle": (self.vehicle or NO_VEHICLE).to_dict(),
            "score": _r(self.score),
            "candidates": [c.to_dict() for c in self.candidates],
            "dscore": _r(self.dscore),
        }
        if self.model_make is not None:
            d["model_make"] = [m.to_dict() for m in self.model_make]
        if self.color is not None:
            d["color"] = [c.to_dict() for c in self.color]
        if self.orientation is not None:
            d["orientation"] = [o.to_dict() for o in self.orientation]
        d.update(self.extra)
        return d


@dataclass(frozen=True, slots=True)
class Recognition:
    """The answer for one image: the Snapshot API's ``POST /v1/plate-reader/`` body.

    Attributes:
        results: plates found, highest detection score first.
        processing_time: milliseconds spent in the engine.
        image_width, image_height: size of the analysed image.
        filename, camera_id, timestamp: request metadata, filled by the caller.
        extra: top-level fields added by the caller (``usage``, ``timestamp_local``...).
        vehicles: vehicles no plate was read on; only filled with ``detection_mode:
            vehicle`` (``engine.vehicle_mode`` serialises them), never in ``to_dict``.
    """

    results: tuple[PlateRead, ...]
    processing_time: float
    image_width: int
    image_height: int
    filename: str | None = None
    camera_id: str | None = None
    timestamp: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    vehicles: tuple[Vehicle, ...] = ()

    def replace(self, **changes: Any) -> Recognition:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "processing_time": round(self.processing_time, 3),
            "results": [r.to_dict() for r in self.results],
            "filename": self.filename,
            "version": 1,
            "camera_id": self.camera_id,
            "timestamp": self.timestamp,
            "image_width": self.image_width,
            "image_height": self.image_height,
        }
        d.update(self.extra)
        return d
