"""One analysis thread per camera: motion gate -> shared engine -> tracker -> events.

The thread owns the camera's tracker, repeat memory and motion gate, so they need no locks.
It waits for its own frame's inference; frames arriving meanwhile replace each other in the
slot (latest wins, counted as dropped), which is how a camera that is too fast for the
engine degrades.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from engine import PlateRead, Recognition
from engine.errors import BackendUnavailable
from engine.plates.process import INPUT_SIZE as PLATE_INPUT
from engine.preprocess import scaled_size
from engine.result import Box
from stream.auto_interval import AutoInterval
from stream.config import CameraConfig
from stream.engine_worker import EngineBusy, EngineWorker
from stream.events import PlateEvent, build_event
from stream.lifecycle import StoppableThread
from stream.motion import MotionGate
from stream.redact import scrub
from stream.sources.frames import Frame, FrameSlot, SourceEnded
from stream.sources.headroom import CpuHeadroom
from stream.tracking import Observation, PlateTracker, RecentPlates, Track

__all__ = ["CameraAnalyzer", "AnalyzerStats"]

log = logging.getLogger(__name__)

TRACK_TIMEOUT_S = 1.5
# Each analysed frame gets only what tracking needs (plate boxes, texts, scores: the engine's
# light call); the vehicle, its type and the candidates are computed once per event, for the
# best frame (Recognizer.enrich). The event is the same as with full calls on every frame.
PER_VEHICLE_ENRICH = True
# With zones, the engine sees only the zones' bounding box (plus this margin, in analysis
# pixels, so a plate whose centre is inside a zone is never cut): a smaller input, so plates
# are larger in the detector's 416x416 letterbox, and no reads of plates elsewhere.
ZONE_MARGIN = 48
# motion_crop: what the detector sees is the box around what moved (plus MOTION_MARGIN
# analysis pixels) and around each plate of the last analysed frame (grown by PLATE_REACH of
# its widths each side: a vehicle that stops still gets detections), at the frame's scale. A
# box that needs the detector's whole input at that scale goes whole: the same work, and the
# detector sees all of the frame. detect_interval: between whole-frame detections, only the
# last plates' surroundings (PLATE_REACH) are searched, or nothing where the frame before had
# no plate, and a new vehicle waits for the next whole frame (DeepStream's nvinfer
# ``interval``, with real detections instead of the tracker's guesses around the plates, so
# each of a vehicle's frames still gives a read to vote with).
MOTION_MARGIN = 48
PLATE_REACH = 1.5
# A plate box within this many pixels of the edge of what the detector saw may be cut (its read
# then votes for little: stream.tracking.best_read)
EDGE_PX = 2


@dataclass
class AnalyzerStats:
    analysed: int = 0
    skipped_still: int = 0
    engine_busy: int = 0
    engine_unavailable: int = 0  # frames dropped while the inference server was unreachable
    events: int = 0
    updates: int = 0
    scene_changes: int = 0
    inflight_peak: int = 0  # most frames of this camera in the engine at once
    cropped: int = 0  # motion_crop: analysed frames the detector saw only a part of
    cropped_share: float = 0.0  # ... the sum of those parts' shares of the frame
    around_plates: int = 0  # detect_interval: analysed frames searched only near the plates
    between: int = 0  # detect_interval: frames not analysed (no plate in the frame before)
    repeats: int = 0
    low_score: int = 0
    errors: int = 0
    last_error: str | None = None


@dataclass(eq=False)
class _Step:
    """One thing to apply to the tracker, in order: an analysed frame (its engine future),
    a frame the motion gate skipped, or the end of the source."""

    frame: Frame | None = None
    future: concurrent.futures.Future[Recognition] | None = None
    still: bool = False
    ended: SourceEnded | None = None
    area: tuple[int, int, int, int] | None = None  # the part of the frame the engine saw
    scale: float | None = None  # a crop: the scale it was detected at (None: fitted)
    around_plates: bool = False  # detect_interval: only the last plates' surroundings seen
    between: bool = False  # detect_interval: not detected (no plate in the last frame)

    def ready(self) -> bool:
        return self.future is None or self.future.done()

    def wait(self, timeout: float) -> None:
        if self.future is not None:
            concurrent.futures.wait([self.future], timeout=timeout)


def _shifted(read: PlateRead, area: tuple[int, int, int, int] | None, sign: int = 1
             ) -> PlateRead:
    """``read`` of the image cut at ``area`` in frame pixels (sign -1: the other way)."""
    if area is None:
        return read
    dx, dy = sign * area[0], sign * area[1]

    def move(b: Box) -> Box:
        return Box(b.xmin + dx, b.ymin + dy, b.xmax + dx, b.ymax + dy)

    vehicle = read.vehicle
    if vehicle is not None:
        vehicle = dataclasses.replace(vehicle, box=move(vehicle.box))
    return read.replace(box=move(read.box), vehicle=vehicle)


class CameraAnalyzer(StoppableThread):
    """Analyses one camera's frames; ``emit`` receives each event (called on this thread)."""

    def __init__(self, cam: CameraConfig, slot: FrameSlot, worker: EngineWorker,
                 emit: Callable[[PlateEvent], None], *, timezone: str = "UTC",
                 headroom: CpuHeadroom | None = None) -> None:
        super().__init__(f"analyze:{cam.name}")
        self.cam = cam
        self.slot = slot
        self.worker = worker
        self.emit = emit
        self.timezone = timezone
        self.stats = AnalyzerStats()
        self.last_frame: Frame | None = None  # the newest frame seen (the console's thumbnail)
        self.finished = threading.Event()  # the source ended for good and all events are out
        self.on_idle: Callable[[], object] | None = None  # called when no frame came for 0.5 s
        self._tracker = PlateTracker(max_prediction_delay=cam.max_prediction_delay,
                                     track_timeout=TRACK_TIMEOUT_S)
        self._memory = RecentPlates(cam.memory_decay, cam.match_ratio)
        self._gate = MotionGate() if cam.motion else None
        self._zones = [np.asarray(z, np.float32) for z in cam.zones]
        self._areas: dict[tuple[int, int, float], tuple[int, int, int, int] | None] = {}
        self._last_plates: list[Box] = []  # in the last analysed frame, frame pixels
        self._prepared: dict[tuple[int, int], threading.Event] = {}  # crops' inputs, by area
        # not where each frame's call needs the vehicles (detection_rule strict keeps a plate
        # only inside one, detection_mode vehicle reports them): a crop may cut them
        opts = cam.read_options
        can_crop = opts.detection_rule != "strict" and opts.detection_mode != "vehicle"
        self._motion_crop = cam.motion_crop and self._gate is not None and can_crop
        # auto: only where frames can be dropped (a file read as fast as possible waits)
        auto = cam.detect_interval == "auto"
        self._auto = None
        if auto and can_crop and not slot.block:
            self._auto = AutoInterval(cam.name, slot, headroom or CpuHeadroom(),
                                      lambda: self.worker.cpu_per_image())
        self._interval = 0 if auto or not can_crop else int(cam.detect_interval)
        self._since_whole = 0  # detect_interval: frames since the last whole-frame detection

    def run(self) -> None:
        # Up to max_inflight frames of this camera are in the engine at once (a camera is not
        # limited to one frame's latency); their results are applied in frame order, with
        # what happened between them (motion-gated frames, cuts, source ends) kept in order.
        pending: deque[_Step] = deque()
        try:
            while not self.stopping.is_set():
                while pending and pending[0].ready():
                    self._apply(pending.popleft())
                if len(pending) >= self.cam.max_inflight:
                    pending[0].wait(0.5)
                    continue
                item = self.slot.get(0.01 if pending else 0.5)
                if item is None:
                    if not pending:
                        if self.cam.live:  # a quiet camera still ends its tracks on time
                            self._finish(self._tracker.update([], time.monotonic()))
                        if self.on_idle is not None:
                            self.on_idle()
                elif isinstance(item, SourceEnded):
                    pending.append(_Step(ended=item))
                else:
                    pending.append(self._start(item))
                    inflight = sum(not st.ready() for st in pending)
                    self.stats.inflight_peak = max(self.stats.inflight_peak, inflight)
        finally:
            # Stopping: what is in the engine is awaited (bounded), what was seen is
            # reported, never lost.
            deadline = time.monotonic() + 5.0
            while pending:
                step = pending.popleft()
                step.wait(max(0.0, deadline - time.monotonic()))
                self._apply(step)
            self._finish(self._tracker.flush())

    def _start(self, frame: Frame) -> _Step:
        self.last_frame = frame
        if self._auto is not None:
            self._interval = self._auto.level(self.stats.between + self.stats.around_plates)
        between = self._since_whole < self._interval  # detect_interval: not a whole frame
        if between and not self._last_plates:
            # before the gate: what moved meanwhile is still new to it on the next frame
            self._since_whole += 1
            return _Step(frame, between=True)
        if self._gate is not None and not self._gate.moved(frame.image, frame.ts, frame.thumb):
            return _Step(frame, still=True)
        if between:
            h, w = frame.image.shape[:2]
            crop = self._crop(self._area(frame) or (0, 0, w, h), None)
            if crop is not None:
                self._since_whole += 1
                return _Step(frame, future=self._submit(frame, *crop), area=crop[0],
                             scale=crop[1], around_plates=True)
        self._since_whole = 0
        area, scale = self._detect_area(frame)
        return _Step(frame, future=self._submit(frame, area, scale), area=area, scale=scale)

    @property
    def interval(self) -> int:
        """The ``detect_interval`` in force now (``auto``'s current step)."""
        return self._interval

    @property
    def interval_changes(self) -> int:
        return self._auto.changes if self._auto is not None else 0

    def _apply(self, step: _Step) -> None:
        if step.ended is not None:
            self._finish(self._tracker.flush())
            self._last_plates = []
            if self._gate is not None:
                self._gate.reset()
            if step.ended.final:
                self.finished.set()
            return
        frame = step.frame
        assert frame is not None
        if frame.cut:  # a scene cut or a fast pan: no track carries over
            self.stats.scene_changes += 1
            self._finish(self._tracker.flush())
            self._last_plates = []
        if step.still or step.between:
            if step.still:
                self.stats.skipped_still += 1
            else:
                self.stats.between += 1
            self._finish(self._tracker.update([], frame.ts))
            return
        rec = self._result(step.future)
        if rec is None:
            return
        self.stats.analysed += 1
        h, w = frame.image.shape[:2]
        if step.around_plates:
            self.stats.around_plates += 1
        elif step.scale is not None and step.area is not None:
            x1, y1, x2, y2 = step.area
            self.stats.cropped += 1
            self.stats.cropped_share += (x2 - x1) * (y2 - y1) / (w * h)
        seen = step.area or (0, 0, w, h)
        obs = [Observation(_shifted(r, step.area), frame.ts, frame, rec.processing_time,
                           at_edge=_at_edge(r.box, seen))
               for r in rec.results]
        self._last_plates = [o.read.box for o in obs]
        obs = [dataclasses.replace(o, sharpness=plate_sharpness(frame, o.read))
               for o in obs if self._in_zone(o.read, frame)]
        self._finish(self._tracker.update(obs, frame.ts))

    def _area(self, frame: Frame) -> tuple[int, int, int, int] | None:
        """The part of the frame the engine looks at (x1, y1, x2, y2), None for all of it."""
        if not self._zones:
            return None
        h, w = frame.image.shape[:2]
        key = (w, h, frame.scale)
        if key not in self._areas:
            pts = np.concatenate(self._zones) * frame.scale
            x1, y1 = (pts.min(0) - ZONE_MARGIN).astype(int)
            x2, y2 = (pts.max(0) + ZONE_MARGIN).astype(int)
            x1, y1, x2, y2 = max(0, x1), max(0, y1), min(w, x2), min(h, y2)
            whole = (x1, y1, x2, y2) == (0, 0, w, h) or x2 - x1 < 16 or y2 - y1 < 16
            self._areas[key] = None if whole else (int(x1), int(y1), int(x2), int(y2))
        return self._areas[key]

    def _detect_area(self, frame: Frame
                     ) -> tuple[tuple[int, int, int, int] | None, float | None]:
        """(the part of the frame to detect on, None for all of it; the scale to detect it at,
        None to fit it to the detector): the zones' box, and with ``motion_crop`` only what
        moved and the last plates' surroundings in it, at the zones' (or frame's) scale."""
        area = self._area(frame)
        box = self._gate.box if self._motion_crop else None  # type: ignore[union-attr]
        if box is None:
            return area, None
        h, w = frame.image.shape[:2]
        crop = self._crop(area or (0, 0, w, h), (box[0] * w, box[1] * h, box[2] * w, box[3] * h))
        return (area, None) if crop is None else crop

    def _crop(self, bounds: tuple[int, int, int, int],
              moved: tuple[float, float, float, float] | None
              ) -> tuple[tuple[int, int, int, int], float] | None:
        """(the box around ``moved`` and the last plates' surroundings, grown to ``bounds``'
        aspect; the scale of ``bounds``), or None where detecting all of ``bounds`` costs the
        same (or the detector's inputs for it are not made yet)."""
        x1, y1, x2, y2 = (np.inf, np.inf, -np.inf, -np.inf) if moved is None else (
            moved[0] - MOTION_MARGIN, moved[1] - MOTION_MARGIN,
            moved[2] + MOTION_MARGIN, moved[3] + MOTION_MARGIN)
        for b in self._last_plates:
            reach = PLATE_REACH * (b.xmax - b.xmin) + MOTION_MARGIN
            x1, y1 = min(x1, b.xmin - reach), min(y1, b.ymin - reach)
            x2, y2 = max(x2, b.xmax + reach), max(y2, b.ymax + reach)
        ax1, ay1, ax2, ay2 = bounds
        x1, y1 = int(max(ax1, x1)), int(max(ay1, y1))
        x2, y2 = int(min(ax2, x2)), int(min(ay2, y2))
        if x2 - x1 < 32 or y2 - y1 < 32:
            return None
        x1, y1, x2, y2 = _grown_to_aspect((x1, y1, x2, y2), bounds)
        scale = PLATE_INPUT / max(ax2 - ax1, ay2 - ay1)
        if (scaled_size(y2 - y1, x2 - x1, scale, PLATE_INPUT) >= PLATE_INPUT
                or not self._crop_ready(ay2 - ay1, ax2 - ax1)):
            return None
        return (x1, y1, x2, y2), scale

    def _crop_ready(self, h: int, w: int) -> bool:
        """Whether the detector's inputs for crops of an h×w area are made. The first ask
        has them made on a thread of this camera's: made on an engine thread when a crop
        first needs one, each (~0.3-0.6 s) held every camera's frames behind it."""
        ready = self._prepared.get((h, w))
        if ready is None:
            ready = self._prepared[(h, w)] = threading.Event()
            threading.Thread(target=self._prepare, args=(h, w, ready), daemon=True,
                             name=f"prepare:{self.cam.name}").start()
        return ready.is_set()

    def _prepare(self, h: int, w: int, ready: threading.Event) -> None:
        try:
            shapes = self.worker.prepare_scaled(h, w)
            log.debug("camera %s: %d detector inputs for crops of %dx%d", self.cam.name,
                      shapes, w, h)
        except Exception:  # crops still work: each input is then made on its first use
            log.exception("camera %s: cannot make the detector inputs for crops", self.cam.name)
        ready.set()

    def _submit(self, frame: Frame, area: tuple[int, int, int, int] | None,
                scale: float | None) -> concurrent.futures.Future[Recognition] | None:
        cam = self.cam
        image = frame.image if area is None else frame.image[area[1]:area[3], area[0]:area[2]]
        try:
            return self.worker.submit(image, cam.regions, cam.mmc, cam.read_options,
                                      light=PER_VEHICLE_ENRICH, detect_scale=scale)
        except EngineBusy:
            self.stats.engine_busy += 1
            return None

    def _result(self, fut: concurrent.futures.Future[Recognition] | None) -> Recognition | None:
        if fut is None:
            return None
        if not fut.done():  # stopping and it did not finish in time
            fut.cancel()
            return None
        try:
            return fut.result(timeout=0)
        except concurrent.futures.CancelledError:
            return None
        except BackendUnavailable as exc:  # logged once per outage by the backend
            self.stats.engine_unavailable += 1
            self.stats.last_error = scrub(str(exc))
            return None
        except Exception as exc:  # an engine failure costs this frame, not the camera
            self.stats.errors += 1
            self.stats.last_error = scrub(f"{type(exc).__name__}: {exc}")
            log.warning("camera %s: inference failed: %s", self.cam.name, exc)
            return None

    def _in_zone(self, read: PlateRead, frame: Frame) -> bool:
        if not self._zones:
            return True
        b = read.box
        pt = ((b.xmin + b.xmax) / 2 / frame.scale, (b.ymin + b.ymax) / 2 / frame.scale)
        return any(cv2.pointPolygonTest(z, pt, False) >= 0 for z in self._zones)

    def _enriched(self, best: Observation) -> Observation:
        """The best read with its vehicle and candidates (see PER_VEHICLE_ENRICH); on an
        engine failure the event goes out with the light read, never lost."""
        if not PER_VEHICLE_ENRICH or best.frame is None:
            return best
        cam = self.cam
        area = self._area(best.frame)
        image = best.frame.image
        if area is not None:
            image = image[area[1]:area[3], area[0]:area[2]]
        try:
            read = self.worker.recognizer.enrich(image, _shifted(best.read, area, -1), cam.regions,
                                                 cam.mmc, cam.read_options)
            read = _shifted(read, area)
        except Exception as exc:
            self.stats.errors += 1
            self.stats.last_error = scrub(f"{type(exc).__name__}: {exc}")
            log.warning("camera %s: vehicle details of %r failed: %s", cam.name,
                        best.read.plate, exc)
            return best
        return dataclasses.replace(best, read=read)

    def _finish(self, tracks: list[Track]) -> None:
        """Tracks the tracker says are due: the first event of a track, or at its end a
        correction when its best read changed clearly since the event."""
        for track in tracks:
            best = track.best()
            if best is None:
                continue
            if track.event_id is None:
                self._first_event(track, best)
            elif track.ended and best.read.score >= self.cam.min_score and (
                track.clearly_better(best)
            ):
                self._memory.is_repeat(best.read.plate, track.last_ts)  # remember the new text
                self._send(track, best, update=True)

    def _first_event(self, track: Track, best: Observation) -> None:
        if best.read.score < self.cam.min_score:
            if track.ended:
                self.stats.low_score += 1
                log.debug("camera %s: track %d best read %r %.2f below min_score",
                          self.cam.name, track.id, best.read.plate, best.read.score)
            return
        # Repeat suppression is for other tracks of the same plate (a car that stopped and
        # drove on): a track that was a repeat stays one unless its plate turns out another.
        was_repeat = track.reported is not None
        if was_repeat and best.read.plate == track.reported.read.plate:
            return
        track.reported = best
        if self._memory.is_repeat(best.read.plate, track.last_ts):
            if not was_repeat:
                self.stats.repeats += 1
            log.debug("camera %s: %r seen within memory_decay", self.cam.name, best.read.plate)
            return
        self._send(track, best, update=False)

    def _send(self, track: Track, best: Observation, *, update: bool) -> None:
        best = self._enriched(best)
        event = build_event(self.cam, track, best, timezone=self.timezone,
                            event_id=track.event_id, updated=update)
        track.event_id, track.reported = event.id, best
        try:
            self.emit(event)
            if update:
                self.stats.updates += 1
            else:
                self.stats.events += 1
        except Exception as exc:
            # The spool could not take it (disk full...): say so loudly, keep running.
            self.stats.errors += 1
            self.stats.last_error = scrub(f"event not stored: {exc}")
            log.error("camera %s: event %s %r could not be stored: %s", self.cam.name,
                      event.id, event.plate, exc)


def _at_edge(box: Box, area: tuple[int, int, int, int]) -> bool:
    """Whether a plate box (in ``area``'s own pixels, as the engine gave it) touches the edge
    of ``area``, where the picture may have cut it: the frame's edge, or a crop's (zones,
    motion_crop, detect_interval), which cuts plates just the same."""
    w, h = area[2] - area[0], area[3] - area[1]
    return (box.xmin <= EDGE_PX or box.ymin <= EDGE_PX or box.xmax >= w - EDGE_PX
            or box.ymax >= h - EDGE_PX)


def _grown_to_aspect(box: tuple[int, int, int, int], area: tuple[int, int, int, int]
                     ) -> tuple[int, int, int, int]:
    """``box`` grown about its centre to ``area``'s aspect and moved inside it (it is inside
    already). Crops of one aspect need only one detector input per scaled size: a camera's
    crops then use 4 input shapes (made ahead, ~20 MB each), not any of 21."""
    x1, y1, x2, y2 = box
    ax1, ay1, ax2, ay2 = area
    aw, ah = ax2 - ax1, ay2 - ay1
    w = min(aw, max(x2 - x1, round((y2 - y1) * aw / ah)))
    h = min(ah, max(y2 - y1, round((x2 - x1) * ah / aw)))
    x = min(max(ax1, (x1 + x2 - w) // 2), ax2 - w)
    y = min(max(ay1, (y1 + y2 - h) // 2), ay2 - h)
    return x, y, x + w, y + h


def plate_sharpness(frame: Frame, read: PlateRead, width: int = 96) -> float | None:
    """Variance of the Laplacian of the plate crop scaled to ``width`` pixels: blur and a
    plate image too small to hold detail both lower it."""
    b, img = read.box, frame.image
    crop = img[max(0, b.ymin):max(0, b.ymax), max(0, b.xmin):max(0, b.xmax)]
    if crop.size == 0 or crop.shape[0] < 2 or crop.shape[1] < 2:
        return None
    h = max(2, round(crop.shape[0] * width / crop.shape[1]))
    grey = cv2.cvtColor(cv2.resize(crop, (width, h), interpolation=cv2.INTER_LINEAR),
                        cv2.COLOR_BGR2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_32F).var())
