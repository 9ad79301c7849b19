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
from rapidfuzz import fuzz

from engine import PlateRead
from stream.tracking.best_read import best_read, read_weights, text_support
from stream.tracking.distances import get_distance

__all__ = ["Observation", "Track", "PlateTracker", "direction_degrees"]



@dataclass(frozen=True, slots=True, eq=False)
class Observation:
    """One plate read in one frame; ``frame`` is opaque here (the pipeline keeps its image)."""

    read: PlateRead
    ts: float
    frame: Any = None
    processing_time: float = 0.0  # ms the engine spent on the frame
    sharpness: float | None = None  # plate crop sharpness (variance of the Laplacian)
    at_edge: bool = False  # the plate touches the edge of the picture the detector saw


@dataclass(eq=False)
class Track:
    """One vehicle's plate over frames.

    ``reported`` is the observation whose read the track's event (or its latest correction)
    carried, ``event_id`` that event's id; both are set by whoever emits the events.
    """

    id: int
    observations: list[Observation] = field(default_factory=list)
    offered: bool = False  # returned as due at max_prediction_delay already
    ended: bool = False
    reported: Observation | None = None
    event_id: str | None = None
    _keepers: dict[str, Observation] = field(default_factory=dict, repr=False)

    @property
    def first_ts(self) -> float:
        return self.observations[0].ts

    @property
    def last_ts(self) -> float:
        return self.observations[-1].ts

    def add(self, obs: Observation) -> None:
        """Append; only the best observation of each text (widest plate, then score) keeps
        its frame, so a long track holds a few frames, not all of them."""
        keeper = self._keepers.get(obs.read.plate)
        if keeper is None or _quality(obs) > _quality(keeper):
            if keeper is not None:
                i = next(i for i, o in enumerate(self.observations) if o is keeper)
                self.observations[i] = dataclasses.replace(keeper, frame=None)
            self._keepers[obs.read.plate] = obs
        elif obs.frame is not None:
            obs = dataclasses.replace(obs, frame=None)
        self.observations.append(obs)

    def _weights(self) -> list[float]:
        obs = self.observations
        return read_weights([o.read for o in obs], [o.sharpness for o in obs],
                            [o.at_edge for o in obs])

    def best(self, min_ratio: float = 70.0) -> Observation | None:
        """The observation of the voted best read (see ``best_read``), with its frame."""
        reads = [o.read for o in self.observations]
        read = best_read(reads, min_ratio, self._weights())
        if read is None:
            return None
        keeper = self._keepers.get(read.plate)
        return keeper if keeper is not None else next(
            o for o in self.observations if o.read is read
        )

    def clearly_better(self, best: Observation, margin: float = 1.5) -> bool:
        """Whether ``best`` should correct the reported read: another text whose reads weigh
        ``margin`` times those of the reported text (image size and score counted)."""
        if self.reported is None or best.read.plate == self.reported.read.plate:
            return False
        reads, weights = [o.read for o in self.observations], self._weights()
        return text_support(reads, weights, best.read.plate) >= margin * text_support(
            reads, weights, self.reported.read.plate)

    def confident_text(self, min_score: float) -> str | None:
        """The text of the latest read at or above ``min_score`` (what this track "is")."""
        for o in reversed(self.observations):
            if o.read.score >= min_score:
                return o.read.plate
        return None

    def direction(self) -> int | None:
        return direction_degrees([o.read for o in self.observations])

    def absorb(self, earlier: Track) -> None:
        """Take over ``earlier`` (the same vehicle's broken track, seen before this one):
        its observations come first, and whatever was already reported of it stays this
        track's event."""
        self.observations[:0] = earlier.observations
        for text, keeper in earlier._keepers.items():
            mine = self._keepers.get(text)
            if mine is None or _quality(keeper) > _quality(mine):
                self._keepers[text] = keeper
        self.id = earlier.id
        self.offered = self.offered or earlier.offered
        if earlier.event_id is not None or earlier.reported is not None:
            self.event_id, self.reported = earlier.event_id, earlier.reported


def _centre(read: PlateRead) -> tuple[float, float]:
    b = read.box
    return ((b.xmin + b.xmax) / 2, (b.ymin + b.ymax) / 2)


def _same_plate(a: str, b: str) -> bool:
    """Two reads of one plate: one misread character, or one a part of the other (a plate
    partly hidden, or cut by the picture's edge)."""
    if min(len(a), len(b)) < 3:
        return False
    return fuzz.ratio(a, b) >= 70 or fuzz.partial_ratio(a, b) >= 90


def _quality(o: Observation) -> tuple[float, float, float]:
    return (o.read.box.width * o.read.score, o.read.score, o.read.dscore)


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


REID_WIDTHS = 6.0  # a broken track's successor begins within this many plate widths
_KEEP = 10_000  # norfair hit counter of a live track (frames); see ``update``


class PlateTracker:
    """Groups per-frame plate reads into tracks and says when a track is due.

    A track is due once at ``max_prediction_delay`` after it was first seen while it goes on,
    and again when it ends (lost for ``track_timeout``, split, or flushed); the caller emits
    the event the first time and a correction later if the best read changed clearly.

    A confidently read plate text that differs from a track's own (both reads at or above
    ``split_score``, rapidfuzz ratio below ``split_ratio``) never joins that track: it is
    another vehicle, and the track it would have joined ends.

    Args:
        max_prediction_delay: a track is due at the latest this long after first seen.
        track_timeout: a track not seen for this long has ended.
        distance, distance_threshold: norfair matching (see ``distances``).
    """

    def __init__(
        self, *, max_prediction_delay: float = 6.0, track_timeout: float = 1.5,
        distance: str = "plate_center_text", distance_threshold: float = 2.5,
        split_score: float = 0.8, split_ratio: float = 50.0,
    ) -> None:
        if max_prediction_delay <= 0 or track_timeout <= 0:
            raise ValueError(
                f"PlateTracker: max_prediction_delay and track_timeout must be > 0, "
                f"got {max_prediction_delay}, {track_timeout}"
            )
        self.max_prediction_delay = max_prediction_delay
        self.track_timeout = track_timeout
        self.distance_threshold = distance_threshold
        self.split_score = split_score
        self.split_ratio = split_ratio
        self._base_distance = get_distance(distance)
        self._norfair = self._new_norfair()
        self._tracks: dict[int, tuple[Any, Track]] = {}  # id(norfair object) -> (obj, Track)
        self._refused: set[int] = set()  # objects that met another plate this frame
        self._next_id = 1

    def _new_norfair(self) -> _Norfair:
        return _Norfair(
            distance_function=self._distance, distance_threshold=self.distance_threshold,
            hit_counter_max=_KEEP, initialization_delay=0, past_detections_length=0,
        )

    def _distance(self, det: Any, obj: Any) -> float:
        d = self._base_distance(det, obj)
        if d > self.distance_threshold:
            return d
        entry = self._tracks.get(id(obj))
        read = det.data.read
        if entry is not None and entry[0] is obj and read.score >= self.split_score:
            text = entry[1].confident_text(self.split_score)
            if text is not None and fuzz.ratio(text, read.plate) < self.split_ratio:
                self._refused.add(id(obj))
                return self.distance_threshold + 1.0
        return d

    def update(self, observations: Sequence[Observation], ts: float) -> list[Track]:
        """Add one frame's observations; return the tracks due now (see the class)."""
        dets = [
            Detection(
                np.array([[o.read.box.xmin, o.read.box.ymin], [o.read.box.xmax, o.read.box.ymax]],
                         dtype=np.float64),
                data=o,
            )
            for o in observations
        ]
        self._refused.clear()
        self._norfair.update(dets)
        alive = {id(obj): obj for obj in self._norfair.tracked_objects}
        # norfair keeps a copy of the matched detection: its ``data`` (our Observation) says
        # whether the object was matched in this frame.
        this_frame = {id(o) for o in observations}
        fed: set[int] = set()
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
            fed.add(key)
            # Our clock ends tracks (track_timeout), not norfair's count of frames: a new
            # far plate read once and then missed for two frames must not die and come back
            # as a second vehicle.
            obj.hit_counter = _KEEP
        ended_now: list[tuple[Track, bool]] = []
        for key, (obj, track) in list(self._tracks.items()):
            split = key in self._refused and key not in fed
            if split or key not in alive or alive[key] is not obj or (
                ts - track.last_ts > self.track_timeout
            ):
                del self._tracks[key]
                obj.hit_counter = -1  # norfair drops it: nothing joins an ended track
                ended_now.append((track, split))
        due = self._ended(ended_now)
        for _, track in self._tracks.values():
            if not track.offered and ts - track.first_ts >= self.max_prediction_delay:
                track.offered = True
                due.append(track)
        return due

    def _successor(self, track: Track, also: Sequence[Track] = ()) -> Track | None:
        """A live track that began after ``track`` was last seen, near where it was, with a
        similar plate text: the same vehicle, its track broken (a partly hidden plate read
        short, frames dropped under load)."""
        last = track.observations[-1].read
        text = track.best()
        if text is None:
            return None
        for cand in sorted([t for _, t in self._tracks.values()] + list(also),
                           key=lambda t: t.first_ts):
            gap = cand.first_ts - track.last_ts
            if not 0 < gap <= self.track_timeout:
                continue
            first = cand.observations[0].read
            reach = REID_WIDTHS * max(last.box.width, first.box.width, 8)
            if math.dist(_centre(last), _centre(first)) > reach:
                continue
            other = cand.best()
            if other is not None and _same_plate(text.read.plate, other.read.plate):
                return cand
        return None

    def flush(self) -> list[Track]:
        """End every open track (source ended, disconnected, or the scene changed). A track
        that broke just before (frames dropped under load) still joins its successor: a cut
        right after a vehicle left must not make it two events, the first of them a partial
        read that then suppresses the whole one as its repeat."""
        ended = [(t, False) for _, t in self._tracks.values()]
        self._tracks.clear()
        self._norfair = self._new_norfair()  # nothing carries over to what comes next
        return self._ended(ended)

    def _ended(self, ended_now: list[tuple[Track, bool]]) -> list[Track]:
        """Tracks that ended now (with whether each split), marked ended, less those a later
        one takes over: one vehicle whose track broke, not two."""
        ended_now.sort(key=lambda e: e[0].first_ts)
        absorbed: set[int] = set()
        for i, (track, split) in enumerate(ended_now):
            later = [t for t, _ in ended_now[i + 1:]]
            successor = None if split else self._successor(track, later)
            if successor is not None:
                successor.absorb(track)
                absorbed.add(id(track))
        out = []
        for track, _ in ended_now:
            if id(track) not in absorbed:
                track.ended = True
                out.append(track)
        return out
