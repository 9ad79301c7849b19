"""The typed, vendor-neutral result model of the engine.

Plain frozen dataclasses: no JSON and no vendor field names here. ``stream/wire.py`` is the one
place that turns them into Plate Recognizer's shapes (Snapshot response, Stream events,
webhooks, CSV).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
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

    @property
    def xyxy(self) -> tuple[int, int, int, int]:
        """``(xmin, ymin, xmax, ymax)`` for ``engine.geometry``."""
        return (self.xmin, self.ymin, self.xmax, self.ymax)


@dataclass(frozen=True, slots=True)
class Region:
    code: str
    score: float


@dataclass(frozen=True, slots=True)
class Candidate:
    plate: str
    score: float


@dataclass(frozen=True, slots=True)
class Vehicle:
    """Vehicle type is one of VEHICLE_TYPES in ``engine.vehicles``."""

    type: str
    score: float
    box: Box


@dataclass(frozen=True, slots=True)
class ColorScore:
    color: str
    score: float


@dataclass(frozen=True, slots=True)
class MakeModel:
    make: str
    model: str
    score: float


@dataclass(frozen=True, slots=True)
class OrientationScore:
    orientation: str
    score: float


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
        model_make, color, orientation: None when mmc was not requested; a tuple (maybe
            empty: no model answered) when it was.
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

    def replace(self, **changes: Any) -> PlateRead:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, slots=True)
class Recognition:
    """The answer for one image.

    Attributes:
        results: plates found, highest detection score first.
        processing_time: milliseconds spent in the engine.
        image_width, image_height: size of the analysed image.
        filename, camera_id, timestamp: the image's metadata, filled by the caller.
        vehicles: vehicles no plate was read on; only filled with ``detection_mode:
            vehicle`` (``stream.wire.snapshot_response`` lists them as results then).
    """

    results: tuple[PlateRead, ...]
    processing_time: float
    image_width: int
    image_height: int
    filename: str | None = None
    camera_id: str | None = None
    timestamp: str | None = None
    vehicles: tuple[Vehicle, ...] = ()

    def replace(self, **changes: Any) -> Recognition:
        return dataclasses.replace(self, **changes)

