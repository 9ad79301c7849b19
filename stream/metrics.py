"""Prometheus metrics of running pipelines, read from their status at scrape time.

One collector is registered in prometheus_client's default REGISTRY (served by the HTTP
server's ``/metrics``); it reports every pipeline that is running, so building several
pipelines in one process (tests) never registers a metric twice.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from typing import Any

from prometheus_client import REGISTRY
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["track", "untrack"]

_pipelines: weakref.WeakSet[Any] = weakref.WeakSet()
_lock = threading.Lock()
_registered = False

_CAMERA_COUNTERS = (
    ("frames_decoded", "Frames decoded"),
    ("frames_analysed", "Frames sent through the engine"),
    ("frames_dropped", "Frames dropped because analysis was behind"),
    ("frames_skipped_still", "Frames skipped by the motion gate"),
    ("reconnects", "Reconnects after a disconnect, error or stall"),
    ("events", "Events emitted"),
)


class _PipelineCollector(Collector):
    def collect(self) -> Iterator[Any]:
        cams = {
            key: CounterMetricFamily(f"platestream_camera_{key}", help_, labels=["camera"])
            for key, help_ in _CAMERA_COUNTERS
        }
        up = GaugeMetricFamily("platestream_camera_streaming",
                               "1 while the camera delivers frames", labels=["camera"])
        fps = GaugeMetricFamily("platestream_camera_fps", "Decoded frames per second",
                                labels=["camera"])
        pending = GaugeMetricFamily("platestream_output_pending",
                                    "Events waiting for delivery", labels=["output"])
        failed = GaugeMetricFamily("platestream_output_failed",
                                   "Events given up after max_attempts", labels=["output"])
        for p in list(_pipelines):
            st = p.status()
            for name, c in st["cameras"].items():
                for key, fam in cams.items():
                    fam.add_metric([name], c[key])
                up.add_metric([name], 1.0 if c["state"] == "streaming" else 0.0)
                fps.add_metric([name], c["fps"])
            for name, o in st["outputs"].items():
                pending.add_metric([name], o["pending"])
                failed.add_metric([name], o["failed"])
        yield from cams.values()
        yield from (up, fps, pending, failed)


def track(pipeline: Any) -> None:
    global _registered
    with _lock:
        if not _registered:
            REGISTRY.register(_PipelineCollector())
            _registered = True
        _pipelines.add(pipeline)


def untrack(pipeline: Any) -> None:
    with _lock:
        _pipelines.discard(pipeline)
