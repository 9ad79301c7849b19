"""Plate tracks over a camera's frames (norfair), and when each track is due for an event.

Pure: no I/O and no clock; timestamps are the camera's clock, passed in. ``update`` is called
for every analysed frame, also with no observations, so tracks end on time.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from norfair import Detection
from norfair import Tracker as _Norfair

from engine import PlateRead
from stream.tracking.best_read import best_read
from stream.tracking.distances import get_distance

__all__ = ["Observation", "Track", "PlateTracker", "direction_degrees"]



@dataclass(frozen=True, slots=True, eq=False)
class Observation:
    """One plate read in one frame; ``frame`` is opaque here (the pipeline keeps its image)."""

    read: PlateRead
    ts: float
    frame: Any = None
    processing_time: float = 0.0  # ms the engine spent on the frame


@dataclass(eq=False)
class Track:
    id: int
    observations: list[Observation] = field(default_factory=list)
    emitted: bool = False
    _keepers: dict[str, Observation] = field(default_factory=dict, repr=False)

    @property
    def first_ts(self) -> float:
        return self.observations[0].ts

    @property
    def last_ts(self) -> float:
        return self.observations[-1].ts

    def add(self, obs: Observation) -> None:
        """Append; only the most confident observation of each text keeps its frame, so a
        long track holds a few frames, not all of them."""
        keeper = self._keepers.get(obs.read.plate)
        if keeper is None or (obs.read.score, obs.read.dscore) > (
            keeper.read.score, keeper.read.dscore
        ):
            if keeper is not None:
                i = next(i for i, o in enumerate(self.observations) if o is keeper)
                self.observations[i] = dataclasses.replace(keeper, frame=None)
            self._keepers[obs.read.plate] = obs
        elif obs.frame is not None:
            obs = dataclasses.replace(obs, frame=None)
        self.observations.append(obs)

    def best(self, min_ratio: float = 70.0) -> Observation | None:
        """The observation of the voted best read (see ``best_read``), with its frame."""
        read = best_read([o.read for o in self.observations], min_ratio)
        if read is None:
            return None
        keeper = self._keepers.get(read.plate)
        return keeper if keeper is not None and keeper.read is read else next(
            o for o in self.observations if o.read is read
        )

    def direction(self) -> int | None:
        return direction_degrees([o.read for o in self.observations])


def direction_degrees(reads: Sequence[PlateRead]) -> int | None:
    """Direction of travel of the plate centre, first to last read, in whole degrees.

    Mathematical convention on the image (y axis pointing up): 0 = moving right, 90 = up,
    180 = left, 270 = down. None when the plate moved less than half its width.
    """
    if len(reads) < 2:
        return None
    a, b = reads[0].box, reads[-1].box
    dx = (b.xmin + b.xmax - a.xmin - a.xmax) / 2
    dy = (b.ymin + b.ymax - a.ymin - a.ymax) / 2
    if math.hypot(dx, dy) < 0.5 * max(1, (a.width + b.width) / 2):
        return None
    return round(math.degrees(math.atan2(-dy, dx))) % 360


class PlateTracker:
    """Groups per-frame plate reads into tracks and says when a track's event is due.

    Args:
        max_prediction_delay: a track's event is due at the latest this long after it was
            first seen, even if the track goes on (later reads then make no new event).
        track_timeout: a track not seen for this long has ended.
        distance, distance_threshold: norfair matching (see ``distances``).
    """

    def __init__(
        self, *, max_prediction_delay: float = 6.0, track_timeout: float = 1.5,
        distance: str = "plate_center_text", distance_threshold: float = 2.5,
    ) -> None:
        if max_prediction_delay <= 0 or track_timeout <= 0:
            raise ValueError(
                f"PlateTracker: max_prediction_delay and track_timeout must be > 0, "
                f"got {max_prediction_delay}, {track_timeout}"
            )
        self.max_prediction_delay = max_prediction_delay
        self.track_timeout = track_timeout
        self._norfair = _Norfair(
            distance_function=get_distance(distance), distance_threshold=distance_threshold,
            hit_counter_max=30, initialization_delay=0, past_detections_length=0,
        )
        self._tracks: dict[int, tuple[Any, Track]] = {}  # id(norfair object) -> (obj, Track)
        self._next_id = 1

    def update(self, observations: Sequence[Observation], ts: float) -> list[Track]:
        """Add one frame's observations; return the tracks whose event is due now (once each)."""
        dets = [
            Detection(
                np.array([[o.read.box.xmin, o.read.box.ymin], [o.read.box.xmax, o.read.box.ymax]],
                         dtype=np.float64),
                data=o,
            )
            for o in observations
        ]
        self._norfair.update(dets)
        alive = {id(obj): obj for obj in self._norfair.tracked_objects}
        # norfair keeps a copy of the matched detection: its ``data`` (our Observation) says
        # whether the object was matched in this frame.
        this_frame = {id(o) for o in observations}
        for key, obj in alive.items():
            det = obj.last_detection
            if det is None or id(det.data) not in this_frame:
                continue
            entry = self._tracks.get(key)
            if entry is None or entry[0] is not obj:
                entry = (obj, Track(self._next_id))
                self._next_id += 1
                self._tracks[key] = entry
            entry[1].add(det.data)
        due = []
        for key, (obj, track) in list(self._tracks.items()):
            ended = key not in alive or alive[key] is not obj or (
                ts - track.last_ts > self.track_timeout
            )
            if not track.emitted and (ended or ts - track.first_ts >= self.max_prediction_delay):
                track.emitted = True
                due.append(track)
            if ended:
                del self._tracks[key]
        return due

    def flush(self) -> list[Track]:
        """End every open track (source ended or disconnected); the ones still owing an event."""
        due = [t for _, t in self._tracks.values() if not t.emitted]
        for t in due:
            t.emitted = True
        self._tracks.clear()
        return due
