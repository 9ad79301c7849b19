"""Prometheus metrics of a running pipeline, read from its status at scrape time.

The pipeline registers one ``PipelineCollector`` in the registry it is given (the app setup
passes prometheus_client's REGISTRY, which the HTTP server's ``/metrics`` serves) when it
starts, and unregisters it when it stops: no module state, several pipelines in one process
(tests) each use their own registry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["PipelineCollector"]

_CAMERA_COUNTERS = (
    ("frames_decoded", "Frames decoded"),
    ("frames_analysed", "Frames sent through the engine"),
    ("frames_dropped", "Sampled frames not analysed: analysis or decoding behind"),
    ("frames_skipped_still", "Frames skipped by the motion gate"),
    ("frames_motion_cropped", "Frames detected only where they moved (motion_crop)"),
    ("frames_around_plates", "Frames searched only around the last plates (detect_interval)"),
    ("frames_between", "Frames between whole-frame detections not searched (detect_interval)"),
    ("frames_shed", "Sampled frames left out while decoding ran behind real time"),
    ("reconnects", "Reconnects after a disconnect, error or stall"),
    ("events", "Events emitted"),
)


class PipelineCollector(Collector):
    """Metrics from ``status()`` (``Pipeline.status``: cameras and outputs)."""

    def __init__(self, status: Callable[[], dict[str, Any]]) -> None:
        self.status = status

    def collect(self) -> Iterator[Any]:
        cams = {
            key: CounterMetricFamily(f"platestream_camera_{key}", help_, labels=["camera"])
            for key, help_ in _CAMERA_COUNTERS
        }
        up = GaugeMetricFamily("platestream_camera_streaming",
                               "1 while the camera delivers frames", labels=["camera"])
        fps = GaugeMetricFamily("platestream_camera_fps", "Decoded frames per second",
                                labels=["camera"])
        lag = GaugeMetricFamily("platestream_camera_decode_lag_seconds",
                                "How far decoding runs behind the source's clock",
                                labels=["camera"])
        fast = GaugeMetricFamily("platestream_camera_fast_decode",
                                 "1 while decoding without the deblocking filter",
                                 labels=["camera"])
        interval = GaugeMetricFamily("platestream_camera_detect_interval",
                                     "Analysed frames between whole-frame detections now "
                                     "(detect_interval; auto raises it while frames drop)",
                                     labels=["camera"])
        pending = GaugeMetricFamily("platestream_output_pending",
                                    "Events waiting for delivery", labels=["output"])
        failed = GaugeMetricFamily("platestream_output_failed",
                                   "Events given up after max_attempts", labels=["output"])
        st = self.status()
        for name, c in st["cameras"].items():
            for key, fam in cams.items():
                fam.add_metric([name], c[key])
            up.add_metric([name], 1.0 if c["state"] == "streaming" else 0.0)
            fps.add_metric([name], c["fps"])
            lag.add_metric([name], c["decode_lag_s"])
            fast.add_metric([name], 1.0 if c["fast_decode"] else 0.0)
            interval.add_metric([name], c["detect_interval"])
        for name, o in st["outputs"].items():
            pending.add_metric([name], o["pending"])
            failed.add_metric([name], o["failed"])
        yield from cams.values()
        yield from (up, fps, lag, fast, interval, pending, failed)
