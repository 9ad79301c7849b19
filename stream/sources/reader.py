"""One decoding thread per camera: PyAV in, analysis-size BGR frames out, reconnect forever.

The thread owns its PyAV container (never shared). A live source that ends, errors or stalls
(PyAV's read timeout) is a disconnect: an end marker goes to the analysis side so open tracks
are finished, then the reader reconnects with capped exponential backoff.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import av
import cv2
from av.video.reformatter import VideoReformatter

from stream.backoff import Backoff
from stream.config import CameraConfig
from stream.lifecycle import StoppableThread
from stream.motion import THUMB_WIDTH, thumbnail_height
from stream.redact import scrub
from stream.sources.decoding import Decoder
from stream.sources.frames import Frame, FrameSlot, SourceEnded
from stream.sources.headroom import CpuHeadroom
from stream.tracking.scene import SceneChange

__all__ = ["CameraReader", "DecodeLag", "ReaderStats", "analysis_size", "probe_file", "BgrScaler",
           "to_grey_thumbnail"]

log = logging.getLogger(__name__)


# seconds between showing a frozen camera as stalled and the read timeout that reconnects it
STALL_GRACE_S = 2.0


@dataclass
class ReaderStats:
    # connecting | streaming | stalled | reconnecting | ended | failed | stopped
    state: str = "starting"
    decoded: int = 0
    sampled: int = 0
    shed: int = 0  # sampled frames left out because decoding ran behind real time
    lag_s: float = 0.0  # how far decoding runs behind the source's clock (live, paced)
    fast_decode: bool = False  # decoding without the deblocking filter now
    fast_decode_switches: int = 0
    reconnects: int = 0
    last_error: str | None = None
    last_frame_time: datetime | None = None
    source_size: tuple[int, int] | None = None
    _window: deque[float] = field(default_factory=deque, repr=False)
    _first_tick: float | None = field(default=None, repr=False)

    def tick(self, now: float) -> None:
        self.decoded += 1
        if self._first_tick is None:
            self._first_tick = now
        self._window.append(now)
        while self._window and now - self._window[0] > FPS_WINDOW_S:
            self._window.popleft()

    @property
    def last_tick(self) -> float | None:
        return self._window[-1] if self._window else None

    def rate(self, now: float) -> float:
        """Decoded frames per second over the last FPS_WINDOW_S, as of ``now``: a camera
        that stops sending decays to 0 instead of showing its last rate."""
        recent = [t for t in list(self._window) if now - t <= FPS_WINDOW_S]  # no mutation:
        if not recent or self._first_tick is None:  # the decoding thread owns the window
            return 0.0
        span = min(FPS_WINDOW_S, now - self._first_tick)
        n = len(recent) - (1 if span < FPS_WINDOW_S else 0)
        return n / span if span > 0 else 0.0

    @property
    def fps(self) -> float:
        return self.rate(time.monotonic())

    def error(self, reason: str) -> str:
        """Record ``reason`` as the last error, credentials scrubbed; returns it."""
        self.last_error = scrub(reason)
        return self.last_error


FPS_WINDOW_S = 5.0


def probe_file(path: str) -> str | None:
    """Why a video file cannot be used (open + first frame), or None when it can."""
    try:
        with av.open(path) as container:
            if not container.streams.video:
                return "no video stream in the file"
            for _ in container.decode(container.streams.video[0]):
                return None
            return "no frame could be decoded"
    except Exception as exc:  # PyAV raises many kinds: each is "cannot be used"
        return scrub(f"{type(exc).__name__}: {exc}")


# frame.rotation (degrees counter-clockwise to show the frame) / 90 -> cv2 turn
_TURNS = {1: cv2.ROTATE_90_COUNTERCLOCKWISE, 2: cv2.ROTATE_180, 3: cv2.ROTATE_90_CLOCKWISE}


DECODER_THREADS = 1
# The engine before the decoders. Decoding has slack (a frame decoded late is still
# analysed) but a frame the engine gets to late is dropped (latest wins); with equal
# priorities 8 decoding threads took 4/5 of the CPU from the 2 engine threads and 54-57 % of
# the sampled frames were dropped, at nice 5 2-4 % (scripts/bench_stream.py --fps 5
# --cameras 8, docs/perf/README.md). Raising one's own nice needs no privilege.
DECODER_NICE = 5
# When decoding does fall behind the source's clock anyway (more work than CPU), the camera
# sheds every other sampled frame until it has caught up: dropping analysis frames evenly,
# rather than a live camera lagging further and further behind until its server gives up.
SHED_LAG_S = 1.0
# ``fast_decode: auto``: a camera starts decoding without the deblocking filter (15-25 % of
# decoding's CPU) and decodes in full when the box's CPU allows (stream.sources.headroom: one
# camera at a time). It goes back to fast at the first sign of overload: decoding AUTO_LAG_S
# behind (half of SHED_LAG_S, so the switch, at the next keyframe, comes before frames are
# shed), or more than AUTO_DROP_RATIO of the sampled frames replaced in the slot before the
# engine took them in two windows of AUTO_WINDOW in a row (one is a burst: the engine making
# its sessions at start); then it asks for full decoding again only after AUTO_HOLD_S.
AUTO_LAG_S = SHED_LAG_S / 2
AUTO_DROP_RATIO = 0.05
AUTO_WINDOW = 40
AUTO_HOLD_S = 600.0
# Decoding in full costs 1.2-1.3x decoding fast (scripts/bench_decode.py), and the decoding
# thread's CPU also holds scaling and the scene check: half of it over-estimates what a grant
# adds, which errs on the side of the reserve.
FULL_DECODE_EXTRA = 0.5
AUTO_COST_S = 1.0  # of decoding measured before a camera asks for full decoding


def analysis_size(width: int, height: int, max_width: int) -> tuple[int, int]:
    """Downscale to at most ``max_width`` keeping the aspect ratio; even sizes for swscale."""
    if width <= max_width:
        return width, height
    h = max(2, round(height * max_width / width / 2) * 2)
    return max_width, h


class DecodeLag:
    """How many seconds decoding runs behind the source's clock (``update`` per frame).

    Measured against the most timely frame so far (now - position at its smallest). The
    baseline may creep forward by DRIFT of the video's time, so a camera whose clock runs a
    little slow (crystal drift, tens of ppm: seconds a day) never adds up to a lag, while
    decoding that cannot keep up (behind by 5 % of real time and more) does. A timestamp that
    goes back or jumps more than RESET_S (a new stream, a camera reboot) starts afresh.
    """

    DRIFT = 0.01
    RESET_S = 30.0

    def __init__(self) -> None:
        self._base: float | None = None
        self._last = 0.0

    def update(self, now: float, position: float) -> float:
        ahead = now - position
        if self._base is None or position < self._last or ahead - self._base > self.RESET_S:
            self._base = ahead
        else:
            self._base = min(self._base + self.DRIFT * (position - self._last), ahead)
        self._last = position
        return ahead - self._base


class BgrScaler:
    """Decoded frames to width×height BGR (numpy), on the calling thread.

    A yuv420p frame is scaled in YUV first and then converted at its new size: swscale's
    unscaled yuv420p -> bgr24 path is SIMD, its scale-and-convert path is not (2.96 -> 1.44 ms
    of CPU per 1080p -> 720p frame; 0.5 grey levels apart, colour space and range kept). Each
    step keeps its scaling context while the size stays (``to_ndarray(width=...)`` made a
    context and a thread pool for every frame); one thread: the cameras are the parallelism.
    """

    def __init__(self) -> None:
        self._scale = VideoReformatter()
        self._convert = VideoReformatter()

    def __call__(self, frame: Any, width: int, height: int) -> Any:
        if frame.format.name == "yuv420p" and (frame.width, frame.height) != (width, height):
            frame = self._scale.reformat(frame, width=width, height=height, format="yuv420p",
                                         interpolation="FAST_BILINEAR", threads=1)
        return self._convert.reformat(frame, width=width, height=height, format="bgr24",
                                      interpolation="FAST_BILINEAR", threads=1).to_ndarray()


def to_grey_thumbnail(scaler: VideoReformatter, frame: Any, width: int, height: int) -> Any:
    """``frame`` as a small grey picture (numpy), straight from its luma plane.

    What stream.motion.grey_thumbnail makes from the BGR frame (the motion gate's and the
    scene check's input; 1.4 grey levels apart on average, the same decisions on the sample
    videos: tests/stream/test_motion.py) for a third of the CPU (0.6 against 1.8 ms).
    """
    return scaler.reformat(frame, width=width, height=height, format="gray",
                           interpolation="AREA", threads=1).to_ndarray()


class CameraReader(StoppableThread):
    """Decodes one camera into a FrameSlot.

    Args:
        cam: the camera's config (url, sample/fps, realtime, loop, timeout, reconnect_max).
        slot: where analysis frames go (latest wins unless the slot blocks).
        backoff_initial: first reconnect delay, seconds.
        headroom: grants ``fast_decode: auto`` decoding in full (shared by a pipeline's cameras;
            made on first use when not given).
    """

    def __init__(self, cam: CameraConfig, slot: FrameSlot, *, backoff_initial: float = 0.5,
                 headroom: CpuHeadroom | None = None):
        super().__init__(f"camera:{cam.name}")
        self.cam = cam
        self.slot = slot
        self.stats = ReaderStats()
        self._backoff = Backoff(min(backoff_initial, cam.reconnect_max), cam.reconnect_max)
        self._ts_base = 0.0
        self._scene = SceneChange()
        self._cut_since_put = False  # a shed frame was a cut: the next frame put says so
        self._last_ts = 0.0
        self._index = 0
        self._shedding = False
        self._shed_next = False
        self._fast = cam.fast_decode is not False  # what the next decoder starts with
        self._headroom = headroom
        self._overloaded_at: float | None = None
        self._cpu_mark = (0.0, 0.0)  # (monotonic, this thread's CPU time) at the last switch
        self._window = (0, 0)  # (sampled, slot.dropped) at the start of the auto window
        self._windows_over = 0  # windows in a row that dropped more than AUTO_DROP_RATIO
        self._to_bgr = BgrScaler()
        self._thumbs = VideoReformatter()  # a scaler per output size keeps its context

    def stop(self, timeout: float | None = None) -> bool:
        """A read blocks up to ``read_timeout``: wait that long plus 5 s by default."""
        exited = super().stop(self.read_timeout + 5 if timeout is None else timeout)
        if self.stats.state not in ("ended", "failed"):  # how a file finished stays shown
            self.stats.state = "stopped"
        return exited

    @property
    def read_timeout(self) -> float:
        """How long a read may block before it is a disconnect: a little longer than the
        stall threshold (``cam.timeout``), so a frozen camera always shows ``stalled`` first
        instead of racing the reconnect."""
        return self.cam.timeout + STALL_GRACE_S

    def check_stall(self, now: float | None = None) -> bool:
        """A connection that stays open but delivers no frame for ``timeout`` seconds is
        stalled: the state says so (once, with a log line) until frames come again or the
        read timeout turns it into a reconnect. Called from the analysis thread idle loop
        and from the status."""
        now = time.monotonic() if now is None else now
        last = self.stats.last_tick
        if self.stats.state == "streaming" and last is not None and (
            now - last > self.cam.timeout
        ):
            self.stats.state = "stalled"
            self.stats.error(f"no frame for {now - last:.1f} s (timeout {self.cam.timeout:g} s)")
            log.warning("camera %s: stalled: %s", self.cam.name, self.stats.last_error)
        return self.stats.state == "stalled"

    def run(self) -> None:
        cam, stop = self.cam, self.stopping
        if sys.platform.startswith("linux"):  # a thread id is a pid to setpriority only there
            try:
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), DECODER_NICE)
            except OSError as exc:  # e.g. a seccomp profile without setpriority
                log.info("camera %s: decoding at the engine's priority: %s", cam.name, exc)
        while not stop.is_set():
            self.stats.state = "connecting"
            reason = "end of stream"
            self._scene.reset()
            self._cut_since_put = False
            try:
                with self._open() as container:
                    self._read(container)
            except Exception as exc:  # any decoder/network failure is a disconnect
                reason = self.stats.error(f"{type(exc).__name__}: {exc}")
                if not cam.live and not stop.is_set():
                    # A file that cannot be opened or decoded will not get better by
                    # retrying: the camera has failed, and says so once.
                    self.stats.state = "failed"
                    log.error("camera %s: video file failed: %s", cam.name, reason)
                    self.slot.end(SourceEnded(f"failed: {reason}", final=True))
                    return
                log.warning("camera %s: %s", cam.name, reason)
            if stop.is_set():
                break
            self._ts_base = self._last_ts + 1.0  # the camera clock never goes back
            if not cam.live and reason == "end of stream":
                if not cam.loop:
                    self.stats.state = "ended"
                    self.slot.end(SourceEnded("end of file", final=True))
                    log.info("camera %s: end of file", cam.name)
                    return
                self.slot.end(SourceEnded("looping", final=False))
                continue
            self.stats.state = "reconnecting"
            self.stats.reconnects += 1
            if reason == "end of stream":
                self.stats.error("stream ended (disconnected)")
            self.slot.end(SourceEnded(reason, final=False))
            delay = self._backoff.next()
            log.info("camera %s: reconnecting in %.1f s", cam.name, delay)
            stop.wait(delay)
        self.stats.state = "stopped"

    def _open(self) -> Any:
        url, options, fmt = self.cam.url, {}, None
        if url.lower().startswith(("rtsp://", "rtsps://")):
            options = {"rtsp_transport": "tcp", "timeout": str(int(self.read_timeout * 1e6))}
        elif url.startswith("/dev/video"):
            fmt = "v4l2"
        return av.open(url, format=fmt, options=options,
                       timeout=(self.cam.timeout, self.read_timeout))

    def _read(self, container: Any) -> None:
        cam, stop, stats = self.cam, self.stopping, self.stats
        stream = container.streams.video[0]
        # One decoding thread per camera: with several cameras the cameras are the
        # parallelism, and FFmpeg's frame threading (AUTO: cores + 1 threads) keeps a frame
        # context per thread: 95 -> 73 MB RSS per 1080p camera (scripts/bench_stream.py, N=4).
        decoder = Decoder(stream, fast=self._fast, threads=DECODER_THREADS)
        auto = cam.fast_decode == "auto" and decoder.can_switch
        if auto and stats.decoded and decoder.fast != stats.fast_decode:
            # granted (or overloaded) just before a reconnect or loop: switched by reopening
            self._switched(decoder.fast)
        stats.fast_decode = decoder.fast
        self._cpu_mark = (time.monotonic(), time.thread_time())
        rotation: float | None = None  # the first frame's: frames after a switch lack it
        pacing = not cam.live and cam.realtime
        self._shedding = self._shed_next = False
        stats.lag_s = 0.0
        rate = float(stream.average_rate or stream.guessed_rate or 25)
        pos0: float | None = None
        t_start = time.monotonic()
        n_in_open = 0
        last_pos = -1e9
        lag = DecodeLag()
        for frame in decoder.frames(container):
            if stop.is_set():
                return
            if decoder.fast != stats.fast_decode:  # only auto asks the decoder to switch
                self._switched(decoder.fast)
            if rotation is None:
                rotation = getattr(frame, "rotation", 0) or 0
            now = time.monotonic()
            stats.tick(now)
            stats.last_frame_time = datetime.now(UTC)
            if stats.state != "streaming":
                if stats.state == "stalled":
                    log.info("camera %s: frames again after a stall", cam.name)
                stats.state = "streaming"
                self._backoff.reset()
            t = frame.time
            if t is None or not math.isfinite(t):  # no timestamp: count frames
                t = n_in_open / rate
            n_in_open += 1
            if pos0 is None:
                pos0 = t
            position = t - pos0
            if pacing and (delay := t_start + position - now) > 0 and stop.wait(delay):
                return
            if cam.live or pacing:
                stats.lag_s = lag.update(time.monotonic(), position)
            if cam.fps is not None:
                if position - last_pos < 1.0 / cam.fps - 1e-3:
                    continue
            elif (n_in_open - 1) % cam.sample:
                continue
            last_pos = position
            if auto:
                self._auto_decode(decoder, now)
            if self._shed(stats.lag_s):
                stats.sampled += 1
                stats.shed += 1
                self.slot.shed += 1
                turn, sideways, _, _, w, h = self._geometry(frame, rotation)
                self._scene_check(frame, turn, sideways, w, h)
                continue
            self._put(frame, position, rotation)

    @property
    def headroom(self) -> CpuHeadroom:
        if self._headroom is None:
            self._headroom = CpuHeadroom()
        return self._headroom

    def _switched(self, fast: bool) -> None:
        """The decoder now decodes ``fast`` (or not): counted, its cost measured afresh, and
        the headroom's window restarted."""
        self.stats.fast_decode = fast
        self.stats.fast_decode_switches += 1
        self._cpu_mark = (time.monotonic(), time.thread_time())
        self.headroom.switched(self.cam.name)

    def _auto_decode(self, decoder: Decoder, now: float) -> None:
        """``fast_decode: auto``, once per sampled frame: fast from the first sign of overload,
        in full when the box has the CPU for it (asked AUTO_HOLD_S after an overload)."""
        stats = self.stats
        why = f"decoding {stats.lag_s:.1f} s behind" if stats.lag_s > AUTO_LAG_S else ""
        sampled0, dropped0 = self._window
        if stats.sampled - sampled0 >= AUTO_WINDOW:
            replaced, window = self.slot.dropped - dropped0, stats.sampled - sampled0
            over = replaced > AUTO_DROP_RATIO * window
            self._windows_over = self._windows_over + 1 if over else 0
            if self._windows_over >= 2:
                why = why or f"{replaced} of the last {window} frames dropped, and before"
            self._window = (stats.sampled, self.slot.dropped)
        if why:
            if not self._fast:
                log.info("camera %s: overloaded (%s): decoding without the deblocking filter "
                         "from the next keyframe", self.cam.name, why)
                self._fast, self._overloaded_at = True, now
                self.headroom.overloaded()
        elif (self._fast and stats.lag_s < AUTO_LAG_S / 2
              and (self._overloaded_at is None or now - self._overloaded_at > AUTO_HOLD_S)):
            t0, cpu0 = self._cpu_mark
            if now - t0 >= AUTO_COST_S:  # what this thread costs says what full decoding adds
                extra = FULL_DECODE_EXTRA * (time.thread_time() - cpu0) / max(now - t0, 1e-3)
                if self.headroom.grant(self.cam.name, extra):
                    self._fast = False
        decoder.request(self._fast)

    def _shed(self, lag: float) -> bool:
        """Whether to leave this sampled frame out: every other one while decoding is more
        than SHED_LAG_S behind, until it is back within half of that."""
        if lag > SHED_LAG_S:
            self._shedding = True
        elif lag < SHED_LAG_S / 2:
            self._shedding = False
        self._shed_next = self._shedding and not self._shed_next
        return self._shed_next

    def _geometry(self, frame: Any, rotation: float
                  ) -> tuple[int | None, bool, int, int, int, int]:
        """(the cv2 turn that shows the frame upright or None, whether it turns it sideways,
        the shown width and height, the analysis width and height)."""
        # Phone videos store the picture sideways plus a display matrix saying how to turn
        # it: analyse it as it is shown (the detector finds nothing on sideways plates).
        turn = _TURNS.get(round(rotation / 90) % 4)
        sideways = turn is not None and turn != cv2.ROTATE_180
        shown_w, shown_h = (frame.height, frame.width) if sideways else (frame.width,
                                                                         frame.height)
        return (turn, sideways, shown_w, shown_h,
                *analysis_size(shown_w, shown_h, self.cam.analysis_width))

    def _scene_check(self, frame: Any, turn: int | None, sideways: bool, w: int, h: int
                     ) -> Any:
        """The frame's grey thumbnail, upright (the motion gate's input), after the scene check
        on it: a cut since the last frame put is kept in ``_cut_since_put``.

        Done here, where every sampled frame passes, shed ones included (~0.6 ms): the analysis
        side sees only the frames it has time for, far apart under load, and compared two
        sampled frames apart a close vehicle changes enough of the picture to pass for a cut
        (10 in a 13.5 s clip at 2.5 frames a second against 3 at 5); each false cut ends the
        tracks of the vehicles in view."""
        tw, th = THUMB_WIDTH, thumbnail_height(w, h)
        thumb = to_grey_thumbnail(self._thumbs, frame, th if sideways else tw,
                                  tw if sideways else th)
        if turn is not None:
            thumb = cv2.rotate(thumb, turn)
        # the thumbnail (THUMB_WIDTH wide) is the check's whole input: no frame image needed
        self._cut_since_put |= self._scene.changed(thumb, thumb)
        return thumb

    def _put(self, frame: Any, position: float, rotation: float) -> None:
        turn, sideways, shown_w, shown_h, w, h = self._geometry(frame, rotation)
        self.stats.source_size = (shown_w, shown_h)
        image = self._to_bgr(frame, h if sideways else w, w if sideways else h)
        if turn is not None:
            image = cv2.rotate(image, turn)
        thumb = self._scene_check(frame, turn, sideways, w, h)
        cut, self._cut_since_put = self._cut_since_put, False
        ts = time.monotonic() if self.cam.live else self._ts_base + position
        self._last_ts = ts
        self.stats.sampled += 1
        self._index += 1
        self.slot.put(
            Frame(image, ts, datetime.now(UTC), None if self.cam.live else position,
                  self._index, w / shown_w, cut, thumb),
            self.stopping,
        )
