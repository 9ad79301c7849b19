from engine.plates.model import PlateDetector

__all__ = ["PlateDetector"]
