"""The stream pipeline: cameras -> shared engine -> tracks -> events -> spool -> outputs.

Start order: spool and delivery workers, then per camera its analysis and decoding threads.
Stop goes in reverse: sources, then analysis (open tracks are flushed into the spool), then
delivery (drained first when asked). ``stream.supervisor`` owns when (and puts the engine and
the server around it). Events reach the disk spool before any output sees them, so a crash or
kill -9 loses no accepted event: the next start delivers what is still pending.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from stream import wire
from stream.analysis import CameraAnalyzer
from stream.config import CameraConfig, OutputConfig, StreamConfig
from stream.delivery import DeliveryWorker, Spool, WebhookSender, stop_workers
from stream.engine_worker import EngineWorker
from stream.events import PlateEvent, event_image
from stream.known_plates import KnownPlates
from stream.lifecycle import stop_threads
from stream.metrics import PipelineCollector
from stream.redact import scrub, scrub_all
from stream.sinks import CsvSink, ImageSink, JsonlSink
from stream.sources import CameraReader, FrameSlot
from stream.sources.headroom import CpuHeadroom
from stream.store import EventStore, open_store
from stream.store.feed import STORE_OUTPUT, StoreSender, store_payload

__all__ = ["Pipeline"]

log = logging.getLogger(__name__)


def make_sender(o: OutputConfig, base: Path, cameras: tuple[str, ...] = ()
                ) -> Callable[..., None]:
    if o.type == "mqtt":
        from stream.delivery.mqtt import MqttSender

        assert o.mqtt is not None
        return MqttSender(o.mqtt, name=o.name, cameras=cameras)
    if o.type == "csv":
        return CsvSink(str(o.file), base, columns=o.columns)
    if o.type == "jsonl":
        return JsonlSink(str(o.file), base)
    if o.type == "images":
        return ImageSink(base / Path(str(o.dir)).expanduser())  # an absolute dir stays as is
    return WebhookSender(str(o.url), headers=o.headers, timeout=o.request_timeout,
                         multipart=o.image_kind != "none")


class _Camera:
    def __init__(self, cam: CameraConfig, worker: EngineWorker,
                 emit: Callable[[PlateEvent], None], timezone: str,
                 headroom: CpuHeadroom) -> None:
        self.cam = cam
        self.slot = FrameSlot(block=not cam.live and not cam.realtime)
        self.reader = CameraReader(cam, self.slot, headroom=headroom)
        self.analyzer = CameraAnalyzer(cam, self.slot, worker, emit, timezone=timezone,
                                       headroom=headroom)
        self.analyzer.on_idle = self.reader.check_stall

    def status(self) -> dict[str, Any]:
        self.reader.check_stall()
        r, a = self.reader.stats, self.analyzer.stats
        return {
            "state": r.state,
            "url": self.cam.safe_url,
            "frames_decoded": r.decoded,
            "frames_sampled": r.sampled,
            "frames_analysed": a.analysed,
            # sampled and not analysed: the engine behind (latest wins, busy, unreachable) or
            # the decoder behind (shed)
            "frames_dropped": self.slot.dropped + a.engine_busy + a.engine_unavailable
            + r.shed,
            "frames_shed": r.shed,
            "decode_lag_s": round(r.lag_s, 2),
            # decoding without the deblocking filter now (fast_decode: true, or auto short of CPU)
            "fast_decode": r.fast_decode,
            "fast_decode_switches": r.fast_decode_switches,
            "frames_skipped_still": a.skipped_still,
            # motion_crop: frames detected on the part that moved, and that part's mean share
            "frames_motion_cropped": a.cropped,
            "motion_crop_share": round(a.cropped_share / a.cropped, 3) if a.cropped else None,
            # detect_interval: frames searched only around the plates of the frame before, and
            # frames between whole ones not searched (the frame before had no plate)
            "frames_around_plates": a.around_plates,
            "frames_between": a.between,
            # the detect_interval in force (auto: 0, raised while the camera drops frames)
            "detect_interval": self.analyzer.interval,
            "detect_interval_changes": self.analyzer.interval_changes,
            # of the frames that reached the motion gate, the share it found still
            "motion_skipped_fraction": round(
                a.skipped_still / max(1, a.skipped_still + a.analysed + a.engine_busy), 3),
            "fps": round(r.fps, 2),
            "last_frame_time": r.last_frame_time.isoformat() if r.last_frame_time else None,
            "reconnects": r.reconnects,
            "last_error": r.last_error or a.last_error,
            "events": a.events,
            "event_updates": a.updates,
            "scene_changes": a.scene_changes,
            "inflight_peak": a.inflight_peak,
            "repeats_suppressed": a.repeats,
            "tracks_below_min_score": a.low_score,
            "analysis_errors": a.errors,
        }


class Pipeline:
    """Runs a StreamConfig's cameras on one shared EngineWorker.

    Args:
        cfg: the loaded config.
        worker: the started engine worker (shared with the HTTP API).
        on_event: also called with each event after it is spooled (e.g. to print it).
        registry: where the pipeline's Prometheus metrics are registered while it runs
            (the app's; None: no metrics).
    """

    def __init__(self, cfg: StreamConfig, worker: EngineWorker, *,
                 on_event: Callable[[PlateEvent], None] | None = None,
                 registry: CollectorRegistry | None = None) -> None:
        self.cfg = cfg
        self.worker = worker
        self.on_event = on_event
        self.registry = registry
        self._collector = PipelineCollector(self.status)
        self.base = Path(cfg.output_dir).expanduser()
        self.spool: Spool | None = None
        self.deliveries: dict[str, DeliveryWorker] = {}
        self.heartbeat = None  # NodeStatusPublisher when an mqtt output has a heartbeat
        self.cameras: dict[str, _Camera] = {}
        self.store: EventStore | None = None
        self.known: KnownPlates | None = None
        self._started = False

    def open(self) -> None:
        """Open the event store and known plates (no threads yet): the HTTP app serves them,
        so the supervisor opens them before it builds the app. ``start`` calls it too."""
        if self.known is not None:
            return
        if self.cfg.store.enabled:
            self.store = open_store(self.cfg.store, self.cfg.state_dir)
        seeds_dir = Path(self.cfg.source).parent if self.cfg.source else Path.cwd()
        try:
            self.known = KnownPlates.from_config(self.cfg.known_plates, seeds_dir,
                                                 backend=self.store)
        except Exception:
            if self.store is not None:
                self.store.close()
                self.store = None
            raise

    def start(self) -> None:
        """Start delivery, then per camera analysis, then its source (the reader)."""
        if self._started:
            return
        self.open()
        self._started = True
        self.spool = Spool(self.cfg.spool_path)
        if self.store is not None:  # always on, for every camera, without being listed
            d = DeliveryWorker(self.spool, STORE_OUTPUT, StoreSender(self.store))
            self.deliveries[STORE_OUTPUT] = d
            d.start()
        for name, o in self.cfg.outputs.items():
            users = tuple(c.name for c in self.cfg.cameras.values() if name in c.outputs)
            d = DeliveryWorker(self.spool, name, make_sender(o, self.base, users),
                               backoff_max=o.backoff_max, max_attempts=o.max_attempts)
            self.deliveries[name] = d
            d.start()
        self._start_heartbeat()  # before the cameras: the hub's known plates arrive first
        headroom = CpuHeadroom()  # the cameras' decoders and detection share the CPU
        for name, cam in self.cfg.cameras.items():
            if not cam.active:
                continue
            c = _Camera(cam, self.worker, lambda ev, cam=cam: self._emit(cam, ev),
                        self.cfg.timezone, headroom)
            self.cameras[name] = c
            c.analyzer.start()
            c.reader.start()
        if self.registry is not None:
            self.registry.register(self._collector)
        log.info("pipeline: %d cameras, %d outputs, spool %s", len(self.cameras),
                 len(self.deliveries), self.cfg.spool_path)

    def stop(self, timeout: float = 10.0, *, drain_timeout: float = 0.0) -> None:
        """Stop sources, then analysis (open tracks are flushed into the spool), then drain
        delivery (up to ``drain_timeout`` s for pending rows; the rest stay in the spool) and
        stop it. Each phase is logged (``stop: ...``)."""
        if not self._started:
            return
        self._started = False
        if self.heartbeat is not None:  # says "offline" itself (the will is for crashes)
            self.heartbeat.stop()
            self.heartbeat = None
        readers = [c.reader for c in self.cameras.values()]
        for r in readers:  # signalled together, so they stop in parallel
            r.signal()
        for r in readers:
            r.stop()
        log.info("stop: sources")
        stop_threads([c.analyzer for c in self.cameras.values()], timeout)
        log.info("stop: analysis")
        if drain_timeout > 0 and not self.wait_delivered(drain_timeout):
            log.warning("stop: %d deliveries still pending; they stay in the spool %s and are "
                        "sent on the next start", self.pending(), self.cfg.spool_path)
        stop_workers(list(self.deliveries.values()), self.spool, timeout)
        log.info("stop: delivery")
        if self.store is not None:
            self.store.close()
        if self.registry is not None:
            self.registry.unregister(self._collector)

    def __enter__(self) -> Pipeline:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _emit(self, cam: CameraConfig, event: PlateEvent) -> None:
        """Spool the event for each of the camera's outputs (one row per output)."""
        assert self.spool is not None and self.known is not None
        known = self.known.match(event.plate)
        event = dataclasses.replace(event, known_plate=known)
        data = wire.event_json(event)  # typed until here: the spool holds the wire shape
        images: dict[str, bytes | None] = {}
        groups: dict[tuple[str, str], list[str]] = {}
        targets = [n for n in cam.outputs
                   if self.cfg.outputs[n].only is None or self.cfg.outputs[n].only.wants(known)]
        for name in targets:
            o = self.cfg.outputs[name]
            key = (f"webhook:{name}" if o.type == "webhook" else "data",
                   o.image_kind)
            groups.setdefault(key, []).append(name)
        for (kind, image_kind), names in groups.items():
            if image_kind not in images:
                images[image_kind] = event_image(event, image_kind)
            payload = data
            if kind.startswith("webhook:"):
                payload = wire.stream_webhook(data, scrub(str(self.cfg.outputs[names[0]].url)))
            self.spool.put(names, event.id, payload, images[image_kind],
                           str(data["filename"]) if images[image_kind] else None)
        if self.store is not None:
            for kind in ("vehicle", "plate"):
                if kind not in images:
                    images[kind] = event_image(event, kind)
            self.spool.put([STORE_OUTPUT], event.id, store_payload(
                data, {"vehicle": images["vehicle"], "plate": images["plate"]}))
            targets.append(STORE_OUTPUT)
        for name in targets:
            self.deliveries[name].notify()
        r = event.recognition.results[0]
        # With a printer (run --print-events) the printed line is the console's one line per
        # event; the details then go to the log at debug level (run --log-file keeps them).
        log.log(logging.INFO if self.on_event is None else logging.DEBUG,
                "camera %s: %s %s plate %s score %.3f direction %s%s", cam.name,
                "update of event" if data.get("updated") else "event", event.id,
                r.plate, r.score, event.direction,
                f" known ({known['list']})" if known else "")
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:
                log.exception("pipeline: on_event callback failed")

    def done(self) -> bool:
        """Every camera is a file that has ended and had its events spooled (also true when
        no camera is active: then ``run`` only delivers what the spool still holds)."""
        return all(
            c.analyzer.finished.is_set() for c in self.cameras.values()
        )

    def pending(self) -> int:
        return sum(d.stats()["pending"] for d in self.deliveries.values())

    def wait_delivered(self, timeout: float) -> bool:
        """Wait (bounded) until the outputs have nothing pending."""
        deadline = time.monotonic() + timeout
        while self.pending():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)
        return True

    def failed(self) -> list[str]:
        """Cameras whose video file could not be opened or decoded."""
        return [n for n, c in self.cameras.items() if c.reader.stats.state == "failed"]

    def _output_type(self, name: str) -> str:
        return "store" if name == STORE_OUTPUT else self.cfg.outputs[name].type

    def last_frame(self, camera: str) -> Any:
        """The newest analysed image (BGR ndarray) of a camera, or None (console thumbnails)."""
        c = self.cameras.get(camera)
        frame = c.analyzer.last_frame if c is not None else None
        return frame.image if frame is not None else None

    def _start_heartbeat(self) -> None:
        """This node's retained status for a hub, on the first mqtt output's broker."""
        for o in self.cfg.outputs.values():
            if o.type == "mqtt" and o.mqtt is not None and o.mqtt.heartbeat > 0:
                from stream.node_status import NodeStatusPublisher

                self._load_hub_known()
                self.heartbeat = NodeStatusPublisher(o.mqtt, o.mqtt.node_id, o.mqtt.heartbeat,
                                                     self.status, on_known=self._hub_known)
                self.heartbeat.start()
                return

    @property
    def _hub_known_path(self) -> Path:
        return self.base / "known_plates_hub.json"

    def _load_hub_known(self) -> None:
        """The hub's lists as last received: a node restarted while the link is down keeps
        deciding (staff -> open the gate) with them."""
        try:
            body = json.loads(self._hub_known_path.read_text())
        except (OSError, ValueError):
            return
        if self.known is not None and isinstance(body, dict):
            n = self.known.set_remote(body)
            log.info("known plates: %d from the hub (saved copy)", n)

    def _hub_known(self, body: dict[str, Any]) -> None:
        if self.known is None:
            return
        n = self.known.set_remote(body)
        tmp = self._hub_known_path.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps(body))
            tmp.replace(self._hub_known_path)
        except OSError as exc:
            log.warning("known plates: the hub's lists could not be saved: %s", exc)
        log.info("known plates: %d from the hub", n)

    def status(self) -> dict[str, Any]:
        return scrub_all({  # errors quote URLs: no credentials in what we show
            "node_id": self.cfg.node_id,
            "cameras": {name: c.status() for name, c in self.cameras.items()},
            "outputs": {name: {"type": self._output_type(name), **d.stats(),
                               **(d.send.status() if hasattr(d.send, "status") else {})}
                        for name, d in self.deliveries.items()},
            "engine": self.worker.stats(),
            "threads": sorted(t.name for t in threading.enumerate()),
        })
