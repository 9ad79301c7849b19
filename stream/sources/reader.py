"""One decoding thread per camera: PyAV in, analysis-size BGR frames out, reconnect forever.

The thread owns its PyAV container (never shared). A live source that ends, errors or stalls
(PyAV's read timeout) is a disconnect: an end marker goes to the analysis side so open tracks
are finished, then the reader reconnects with capped exponential backoff.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import av

from stream.backoff import Backoff
from stream.config import CameraConfig
from stream.lifecycle import StoppableThread
from stream.sources.frames import Frame, FrameSlot, SourceEnded

__all__ = ["CameraReader", "ReaderStats", "analysis_size"]

log = logging.getLogger(__name__)


@dataclass
class ReaderStats:
    state: str = "starting"  # connecting | streaming | reconnecting | ended | stopped
    decoded: int = 0
    sampled: int = 0
    reconnects: int = 0
    last_error: str | None = None
    last_frame_time: datetime | None = None
    fps: float = 0.0
    _window: list[float] = field(default_factory=list, repr=False)

    def tick(self, now: float) -> None:
        self.decoded += 1
        self._window.append(now)
        while self._window and now - self._window[0] > 5.0:
            self._window.pop(0)
        if len(self._window) > 1:
            span = self._window[-1] - self._window[0]
            self.fps = (len(self._window) - 1) / span if span > 0 else 0.0


DECODER_THREADS = 1


def analysis_size(width: int, height: int, max_width: int) -> tuple[int, int]:
    """Downscale to at most ``max_width`` keeping the aspect ratio; even sizes for swscale."""
    if width <= max_width:
        return width, height
    h = max(2, round(height * max_width / width / 2) * 2)
    return max_width, h


class CameraReader(StoppableThread):
    """Decodes one camera into a FrameSlot.

    Args:
        cam: the camera's config (url, sample/fps, realtime, loop, timeout, reconnect_max).
        slot: where analysis frames go (latest wins unless the slot blocks).
        backoff_initial: first reconnect delay, seconds.
    """

    def __init__(self, cam: CameraConfig, slot: FrameSlot, *, backoff_initial: float = 0.5):
        super().__init__(f"camera:{cam.name}")
        self.cam = cam
        self.slot = slot
        self.stats = ReaderStats()
        self._backoff = Backoff(min(backoff_initial, cam.reconnect_max), cam.reconnect_max)
        self._ts_base = 0.0
        self._last_ts = 0.0
        self._index = 0

    def stop(self, timeout: float | None = None) -> bool:
        """A read blocks up to ``cam.timeout``: wait that long plus 5 s by default."""
        exited = super().stop(self.cam.timeout + 5 if timeout is None else timeout)
        self.stats.state = "stopped"
        return exited

    def run(self) -> None:
        cam, stop = self.cam, self.stopping
        while not stop.is_set():
            self.stats.state = "connecting"
            reason = "end of stream"
            try:
                with self._open() as container:
                    self._read(container)
            except Exception as exc:  # any decoder/network failure is a disconnect
                reason = f"{type(exc).__name__}: {exc}"
                self.stats.last_error = reason
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
                self.stats.last_error = "stream ended (disconnected)"
            self.slot.end(SourceEnded(reason, final=False))
            delay = self._backoff.next()
            log.info("camera %s: reconnecting in %.1f s", cam.name, delay)
            stop.wait(delay)
        self.stats.state = "stopped"

    def _open(self) -> Any:
        url, options, fmt = self.cam.url, {}, None
        if url.lower().startswith(("rtsp://", "rtsps://")):
            options = {"rtsp_transport": "tcp", "timeout": str(int(self.cam.timeout * 1e6))}
        elif url.startswith("/dev/video"):
            fmt = "v4l2"
        return av.open(url, format=fmt, options=options, timeout=(self.cam.timeout,) * 2)

    def _read(self, container: Any) -> None:
        cam, stop, stats = self.cam, self.stopping, self.stats
        stream = container.streams.video[0]
        # One decoding thread per camera: with several cameras the cameras are the
        # parallelism, and FFmpeg's frame threading (AUTO: cores + 1 threads) keeps a frame
        # context per thread: 95 -> 73 MB RSS per 1080p camera (scripts/bench_stream.py, N=4).
        stream.codec_context.thread_count = DECODER_THREADS
        pacing = not cam.live and cam.realtime
        rate = float(stream.average_rate or stream.guessed_rate or 25)
        pos0: float | None = None
        t_start = time.monotonic()
        n_in_open = 0
        last_pos = -1e9
        for frame in container.decode(stream):
            if stop.is_set():
                return
            now = time.monotonic()
            stats.tick(now)
            stats.last_frame_time = datetime.now(UTC)
            if stats.state != "streaming":
                stats.state = "streaming"
                self._backoff.reset()
            t = frame.time if frame.time is not None else n_in_open / rate
            n_in_open += 1
            if pos0 is None:
                pos0 = t
            position = t - pos0
            if pacing and (delay := t_start + position - now) > 0 and stop.wait(delay):
                return
            if cam.fps is not None:
                if position - last_pos < 1.0 / cam.fps - 1e-3:
                    continue
            elif (n_in_open - 1) % cam.sample:
                continue
            last_pos = position
            self._put(frame, position)

    def _put(self, frame: Any, position: float) -> None:
        w, h = analysis_size(frame.width, frame.height, self.cam.analysis_width)
        image = frame.to_ndarray(width=w, height=h, format="bgr24",
                                 interpolation="FAST_BILINEAR")
        ts = time.monotonic() if self.cam.live else self._ts_base + position
        self._last_ts = ts
        self.stats.sampled += 1
        self._index += 1
        self.slot.put(
            Frame(image, ts, datetime.now(UTC), None if self.cam.live else position,
                  self._index, w / frame.width),
            self.stopping,
        )
