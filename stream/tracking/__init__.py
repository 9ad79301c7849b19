"""Tracking plates across frames and choosing one best read per passing vehicle (pure code)."""

from stream.tracking.best_read import best_read
from stream.tracking.memory import RecentPlates
from stream.tracking.scene import SceneChange
from stream.tracking.tracker import Observation, PlateTracker, Track, direction_degrees

__all__ = [
    "best_read", "RecentPlates", "SceneChange", "Observation", "PlateTracker", "Track",
    "direction_degrees",
]
