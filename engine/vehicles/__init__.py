from engine.vehicles.model import VEHICLE_TYPES, VehicleDetector, vehicle_type

__all__ = ["VehicleDetector", "VEHICLE_TYPES", "vehicle_type"]
