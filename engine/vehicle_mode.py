"""The Snapshot answer for ``config: {"detection_mode": "vehicle"}``: each result is an object
with an optional ``plate`` and an optional ``vehicle``, their attributes under ``props``, and
vehicles without a readable plate are results too (Plate Recognizer's "Vehicle Only
Response"; golden: ``snapshot_cloud_plate_reader_response_detection_mode_vehicle.json``)."""

from __future__ import annotations

from typing import Any

from engine.result import (
    UNKNOWN_COLOR,
    UNKNOWN_MAKE_MODEL,
    UNKNOWN_ORIENTATION,
    PlateRead,
    Recognition,
    Vehicle,
    _r,
)

__all__ = ["vehicle_mode_dict"]


def _plate(p: PlateRead) -> dict[str, Any]:
    return {
        "type": "Plate",
        "score": _r(p.dscore),
        "box": p.box.to_dict(),
        "props": {
            "plate": [{"value": c.plate, "score": _r(c.score)} for c in p.candidates[:3]]
            or [{"value": p.plate, "score": _r(p.score)}],
            "region": [{"value": p.region.code, "score": _r(p.region.score)}],
        },
    }


def _vehicle(v: Vehicle, p: PlateRead | None, mmc: bool) -> dict[str, Any]:
    props: dict[str, Any] = {}
    if mmc:
        mm = (p.model_make if p is not None else None) or UNKNOWN_MAKE_MODEL
        orient = (p.orientation if p is not None else None) or UNKNOWN_ORIENTATION
        color = (p.color if p is not None else None) or UNKNOWN_COLOR
        props = {
            "make_model": [m.to_dict() for m in mm],
            "orientation": [{"value": o.orientation, "score": _r(o.score)} for o in orient],
            "color": [{"value": c.color, "score": _r(c.score)} for c in color],
        }
    return {"type": v.type, "score": _r(v.score), "box": v.box.to_dict(), "props": props}


def vehicle_mode_dict(rec: Recognition, mmc: bool = False) -> dict[str, Any]:
    """``rec`` in the vehicle-mode shape; top-level keys as ``Recognition.to_dict``."""
    d = rec.to_dict()
    results = []
    for p in rec.results:
        results.append({"plate": _plate(p),
                        "vehicle": _vehicle(p.vehicle, p, mmc) if p.vehicle is not None
                        else None})
    results += [{"plate": None, "vehicle": _vehicle(v, None, mmc)} for v in rec.vehicles]
    d["results"] = results
    return d
