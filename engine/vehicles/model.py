"""Vehicle detector and the mapping of its COCO classes to Snapshot vehicle types."""

from __future__ import annotations

import numpy as np

from engine.backends import Backend
from engine.types import Detections
from engine.vehicles import process

__all__ = ["VehicleDetector", "VEHICLE_TYPES", "vehicle_type"]

VEHICLE_TYPES = (
    "Sedan", "SUV", "Van", "Pickup Truck", "Big Truck", "Bus", "Motorcycle", "Unknown",
)

# COCO-80 has no SUV/Van/Pickup distinction: a "car" is reported as Sedan and a COCO
# "truck" (lorries, and also most pickups) as Big Truck.
_COCO_TO_TYPE = {2: "Sedan", 3: "Motorcycle", 5: "Bus", 7: "Big Truck"}
VEHICLE_TYPES_NOTE = ("COCO-80 vehicle detector: car -> Sedan, truck -> Big Truck, bus -> Bus, "
                      "motorcycle -> Motorcycle; SUV, Van and Pickup Truck are not told apart")


def vehicle_type(class_id: int) -> str:
    return _COCO_TO_TYPE.get(int(class_id), "Unknown")


class VehicleDetector:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._input = next(iter(backend.inputs()))

    def detect(self, bgr: np.ndarray, threshold: float = 0.3) -> Detections:
        """Vehicles in a BGR frame (COCO class ids), best first."""
        x, lb = process.preprocess(bgr)
        out = next(iter(self.backend.infer({self._input: x}).values()))
        return process.decode(out, lb, bgr.shape[1], bgr.shape[0], threshold)
