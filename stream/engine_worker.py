"""The inference threads for the whole process, shared by the HTTP API and every camera.

The worker threads own the Recognizer calls: callers only ``submit`` and get a Future.
Requests that arrive together with the same (regions, mmc, config) share one
``recognize_batch`` call, so their plate reads share OCR calls.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine import ReadOptions, Recognition, Recognizer, parse_regions
from engine.errors import BackendUnavailable
from engine.settings import DEFAULT_WORKERS as _DEFAULT_WORKERS
from stream.lifecycle import stop_threads

__all__ = ["EngineBusy", "EngineWorker"]

log = logging.getLogger(__name__)


# 200 Mpx of BGR images is 600 MB: dozens of camera frames or ordinary photos, or three of
# the largest images the decoder accepts (engine.imageio.MAX_PIXELS, 60 Mpx).
DEFAULT_MAX_PIXELS = 200_000_000

# What the CLI and configs run (engine.settings): two engine threads overlap one image's
# Python work (crops, NMS, decoding) with another's model runs, +10-15 % analysed fps on
# 2 cores (scripts/bench_stream.py).
DEFAULT_WORKERS = _DEFAULT_WORKERS


class EngineBusy(Exception):
    """The inference queue is full: the caller should drop the frame or answer 429."""


@dataclass(slots=True)
class _Job:
    image: np.ndarray
    # regions, mmc, config, light, detect_scale
    key: tuple[tuple[str, ...], bool, ReadOptions, bool, float | None]
    future: Future[Recognition] = field(default_factory=Future)

    @property
    def pixels(self) -> int:
        return int(self.image.shape[0]) * int(self.image.shape[1])


class EngineWorker:
    """Runs a Recognizer on a dedicated thread fed by a bounded queue.

    Args:
        recognizer: the engine; only this worker's thread calls it.
        max_queue: jobs waiting at most; ``submit`` raises EngineBusy beyond that, so memory
            stays bounded under load.
        max_batch: images per recognize_batch call.
        batch_window_ms: how long the first job of a batch waits for companions.
        max_pixels: image pixels queued or running at most (decoded BGR images take 3 bytes a
            pixel): a job beyond that raises EngineBusy unless nothing else is waiting, so a
            burst of huge images cannot take gigabytes while one image of any size still runs.
        workers: inference threads. A second one overlaps one batch's Python work (decode,
            crops, NMS) with another's model runs; ONNX Runtime sessions allow concurrent
            runs and the TensorRT backend serialises its own.
    """

    def __init__(
        self,
        recognizer: Recognizer,
        *,
        max_queue: int = 64,
        max_batch: int = 8,
        batch_window_ms: float = 5.0,
        workers: int = 1,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        if max_queue < 1 or max_batch < 1 or batch_window_ms < 0 or workers < 1:
            raise ValueError(
                f"EngineWorker: max_queue, max_batch and workers must be >= 1 and "
                f"batch_window_ms >= 0, got {max_queue}, {max_batch}, {workers}, {batch_window_ms}"
            )
        self.recognizer = recognizer
        self.max_batch = max_batch
        self.batch_window = batch_window_ms / 1000.0
        self._queue: queue.Queue[_Job] = queue.Queue(maxsize=max_queue)
        self._stop = threading.Event()
        self.workers = workers
        self.max_pixels = max_pixels
        self._pixels = 0  # of the jobs submitted and not done yet
        self._jobs = 0
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._stats = {"processed": 0, "batches": 0, "rejected": 0, "errors": 0,
                       "unavailable": 0}
        self._busy_s = 0.0
        self._cpu_s = 0.0  # the worker threads' own CPU time in recognize_batch
        self._idle = 0  # workers waiting for a job

    def start(self) -> None:
        if self._threads:
            return
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self._run, name=f"engine-{i}", daemon=True)
            for i in range(self.workers)
        ]
        for t in self._threads:
            t.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        stop_threads(self._threads, timeout)
        self._threads = []
        while True:  # nothing waits forever on a future that will never run
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            self._release([job])
            job.future.cancel()

    def __enter__(self) -> EngineWorker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def prepare_scaled(self, h: int, w: int) -> int:
        """Make the detector inputs for ``detect_scale`` crops of an h×w area now (called
        from a camera's own thread, so that no engine thread waits while they are made);
        how many are ready (Recognizer.prepare_scaled)."""
        return self.recognizer.prepare_scaled(h, w)

    def cpu_per_image(self) -> float | None:
        """CPU seconds the engine threads spent per image so far (None before the first): what
        one more analysed frame costs, for ``detect_interval: auto``. A remote backend's work
        is not in it, nor ONNX Runtime's own thread pool where it has one."""
        with self._lock:
            n = self._stats["processed"]
            return self._cpu_s / n if n else None

    def submit(
        self,
        image: np.ndarray,
        regions: Sequence[str] = (),
        mmc: bool = False,
        config: ReadOptions | dict | str | None = None,
        *,
        light: bool = False,
        detect_scale: float | None = None,
    ) -> Future[Recognition]:
        """Queue one BGR image; never blocks. ``light``, ``detect_scale``: see
        Recognizer.recognize_batch.

        Raises:
            EngineBusy: the queue is full.
            EngineConfigError: bad regions or config (raised here, not in the future).
        """
        job = _Job(image, (parse_regions(regions), bool(mmc), ReadOptions.parse(config),
                           bool(light), detect_scale))
        with self._lock:
            if self._jobs and self._pixels + job.pixels > self.max_pixels:
                self._stats["rejected"] += 1
                raise EngineBusy(f"inference queue is full ({self._pixels // 1_000_000} Mpx of "
                                 f"images waiting)")
            try:
                self._queue.put_nowait(job)
            except queue.Full:
                self._stats["rejected"] += 1
                raise EngineBusy(
                    f"inference queue is full ({self._queue.maxsize} waiting)") from None
            self._pixels += job.pixels
            self._jobs += 1
        return job.future

    def _release(self, jobs: list[_Job]) -> None:
        """Give back the budget of jobs about to be answered, before their futures are set,
        so a caller that got its result can submit again at once."""
        with self._lock:
            self._pixels -= sum(j.pixels for j in jobs)
            self._jobs -= len(jobs)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            out: dict[str, Any] = dict(self._stats)
            out["busy_seconds"] = round(self._busy_s, 3)
            out["cpu_seconds"] = round(self._cpu_s, 3)
            out["queued_mpx"] = round(self._pixels / 1e6, 1)
        out["queued"] = self._queue.qsize()
        out["max_queue"] = self._queue.maxsize
        out["workers"] = self.workers
        out["backend"] = self.recognizer.backend_name
        server = getattr(self.recognizer, "backend_status", lambda: None)()
        if server is not None:  # a remote backend (Triton): reachable or not, since when
            out["inference_server"] = server
        out["precision"] = getattr(self.recognizer, "precision", "fp32")
        return out

    def _collect(self, first: _Job, pending: list[_Job]) -> list[_Job]:
        """The first job plus companions with the same key arriving within the window; jobs
        with other settings go to this thread's ``pending``."""
        jobs, others = [first], []
        deadline = time.monotonic() + self.batch_window
        # The detectors run image by image inside a batch (only the OCR crops share calls),
        # so a batch is one thread's serial work: take no more than a fair share of what is
        # waiting, and nothing more while another worker idles. One worker grabbing four
        # frames of a 2-core box left the other idle (scripts/bench_stream.py, docs/perf).
        share = -(-(1 + self._queue.qsize()) // self.workers)
        limit = self.max_batch if self.workers == 1 else min(self.max_batch, share)
        while len(jobs) < limit and not self._idle:
            remaining = deadline - time.monotonic()
            try:
                if remaining > 0:
                    job = self._queue.get(timeout=remaining)
                else:
                    job = self._queue.get_nowait()
            except queue.Empty:
                break
            (jobs if job.key == first.key else others).append(job)
        pending.extend(others)  # different settings: run them in the next round, first in line
        return jobs

    def _run(self) -> None:
        pending: list[_Job] = []
        while not self._stop.is_set():
            if pending:
                first = pending.pop(0)
            else:
                with self._lock:
                    self._idle += 1
                try:
                    first = self._queue.get(timeout=0.5)
                except queue.Empty:
                    continue
                finally:
                    with self._lock:
                        self._idle -= 1
            jobs = self._collect(first, pending)
            batch: list[_Job] = []
            cancelled: list[_Job] = []  # by their callers while waiting
            for job in jobs:
                (batch if job.future.set_running_or_notify_cancel() else cancelled).append(job)
            self._release(cancelled)
            if batch:
                self._process(batch)
        self._release(pending)
        for job in pending:  # nothing waits forever on a job this thread set aside
            job.future.cancel()

    def _process(self, batch: list[_Job]) -> None:
        regions, mmc, config, light, detect_scale = batch[0].key
        t0, cpu0 = time.perf_counter(), time.thread_time()
        try:
            images = [j.image for j in batch]
            extra: dict = {"light": True} if light else {}
            if detect_scale is not None:
                extra["detect_scale"] = detect_scale
            results = self.recognizer.recognize_batch(images, regions, mmc, config, **extra)
        except Exception as exc:  # the error belongs to the callers, not to this thread
            unavailable = isinstance(exc, BackendUnavailable)
            if not unavailable:  # an unreachable server is logged once per outage, not here
                log.exception("engine: batch of %d failed", len(batch))
            self._release(batch)
            with self._lock:
                self._stats["unavailable" if unavailable else "errors"] += len(batch)
            for job in batch:
                job.future.set_exception(exc)
            return
        self._release(batch)
        with self._lock:
            self._stats["processed"] += len(batch)
            self._stats["batches"] += 1
            self._busy_s += time.perf_counter() - t0
            self._cpu_s += time.thread_time() - cpu0
        for job, result in zip(batch, results, strict=True):
            job.future.set_result(result)
