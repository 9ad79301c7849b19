from engine.vehicles.model import VEHICLE_TYPES, VEHICLE_TYPES_NOTE, VehicleDetector, vehicle_type

__all__ = ["VehicleDetector", "VEHICLE_TYPES", "VEHICLE_TYPES_NOTE", "vehicle_type"]
