"""An edge node's health on the MQTT broker, for the hub (``platestream hub``).

``{prefix}/nodes/{node_id}/status`` carries, retained, a JSON summary of the node every
``heartbeat`` seconds: cameras (state, fps, frames dropped, events), outputs (pending,
failed), the engine (backend, and the inference server's state for Triton), the version.
The broker publishes the last will ``{"node_id": ..., "state": "offline"}`` on the same topic
(retained) when the node vanishes without saying goodbye (killed, power or link lost): with a
keepalive of ``heartbeat`` seconds it fires within 1.5 x heartbeat. A clean stop publishes
``"state": "offline"`` itself.

It has its own MQTT connection (a connection has only one last will, and the mqtt output's is
its Home Assistant availability topic). On the same connection it receives the hub's known
plates, retained on ``{prefix}/known_plates``, and hands them to ``on_known``.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from engine import __version__
from stream.delivery.mqtt_config import MqttConfig, report_connect_errors, topic_part

__all__ = ["NodeStatusPublisher", "status_topic", "summarize"]

log = logging.getLogger(__name__)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def known_topic(prefix: str) -> str:
    return f"{prefix}/known_plates"


def status_topic(prefix: str, node_id: str) -> str:
    return f"{prefix}/nodes/{topic_part(node_id)}/status"


def summarize(node_id: str, status: dict[str, Any], heartbeat: float) -> dict[str, Any]:
    """The heartbeat payload from a pipeline's ``status()``: small, no thread lists."""
    cams = {
        name: {k: c.get(k) for k in ("state", "fps", "frames_analysed", "frames_dropped",
                                     "events", "last_frame_time", "last_error")}
        for name, c in (status.get("cameras") or {}).items()
    }
    outputs = {
        name: {k: o.get(k) for k in ("type", "pending", "failed", "delivered", "last_error")}
        for name, o in (status.get("outputs") or {}).items()
    }
    engine = status.get("engine") or {}
    return {
        "node_id": node_id,
        "state": "online",
        "time": _now_iso(),
        "heartbeat": heartbeat,
        "version": __version__,
        "cameras": cams,
        "outputs": outputs,
        "outputs_pending": sum(int(o.get("pending") or 0) for o in outputs.values()),
        "engine": {k: engine.get(k) for k in ("backend", "queued", "processed", "errors",
                                              "unavailable", "inference_server") if k in engine},
    }


class NodeStatusPublisher:
    """Publishes ``provider()`` (a pipeline's status) as this node's retained heartbeat.

    Args:
        cfg: the broker (an mqtt output's settings: host, port, credentials, TLS, prefix).
        node_id: this node's name on the broker (topic-safe).
        heartbeat: seconds between two status messages (and the MQTT keepalive).
        provider: returns the pipeline's ``status()`` dict.
        on_known: called (on paho's thread) with each known-plates snapshot the hub pushes.
    """

    def __init__(self, cfg: MqttConfig, node_id: str, heartbeat: float,
                 provider: Callable[[], dict[str, Any]],
                 on_known: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.cfg = cfg
        self.node_id = topic_part(node_id)
        self.heartbeat = heartbeat
        self.provider = provider
        self.on_known = on_known
        self.topic = status_topic(cfg.topic_prefix, self.node_id)
        self.published = 0
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._connected = threading.Event()
        c = mqtt.Client(CallbackAPIVersion.VERSION2,
                        client_id=f"platestream-{self.node_id}-status",
                        protocol=mqtt.MQTTv311)
        cfg.apply(c)
        report_connect_errors(c, f"{cfg.host}:{cfg.port}", self._set_error)
        c.will_set(self.topic, json.dumps({"node_id": self.node_id, "state": "offline"}),
                   qos=1, retain=True)
        c.reconnect_delay_set(1, max(2, int(heartbeat)))
        c.on_connect = self._on_connect
        c.on_disconnect = lambda *_a, **_k: self._connected.clear()
        c.on_message = self._on_message
        self.client = c
        self._thread = threading.Thread(target=self._run, name="node-status", daemon=True)

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                    properties: Any = None) -> None:
        if reason.is_failure:
            hint = " (check the output's username and password)" if any(
                w in str(reason).lower() for w in ("authori", "password")) else ""
            self._set_error(f"broker {self.cfg.host}:{self.cfg.port} refused the connection: "
                            f"{reason}{hint}")
            return
        self.last_error = None
        self._connected.set()
        if self.on_known is not None:
            client.subscribe(known_topic(self.cfg.topic_prefix), qos=1)
        self._publish()  # at once: the hub sees a (re)connected node without waiting

    def _set_error(self, error: str) -> None:
        if error != self.last_error:  # once per distinct problem, not per retry
            log.warning("node status: %s; retrying", error)
        self.last_error = error

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if self.on_known is None or msg.topic != known_topic(self.cfg.topic_prefix):
            return
        try:
            body = json.loads(msg.payload)
            if not isinstance(body, dict):
                raise ValueError("not a JSON object")
            self.on_known(body)
        except Exception as exc:  # a bad push must not end the connection
            log.warning("node status: known plates from the hub not applied: %s", exc)

    def _publish(self) -> None:
        try:
            body = summarize(self.node_id, self.provider(), self.heartbeat)
        except Exception:  # a status provider failure must not end the heartbeat
            log.exception("node status: the status could not be read")
            return
        self.client.publish(self.topic, json.dumps(body, default=str), qos=1, retain=True)
        self.published += 1

    def start(self) -> None:
        keepalive = max(5, int(round(self.heartbeat)))
        try:
            self.client.connect_async(self.cfg.host, self.cfg.port, keepalive=keepalive)
        except (OSError, ValueError) as exc:
            log.warning("node status: cannot connect to %s:%d: %s", self.cfg.host,
                        self.cfg.port, exc)
        self.client.loop_start()
        self._thread.start()
        log.info("node status: %s every %g s (node %s)", self.topic, self.heartbeat,
                 self.node_id)

    def _run(self) -> None:
        while not self._stop.wait(self.heartbeat):
            if self._connected.is_set():
                self._publish()

    def stop(self, timeout: float = 3.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self._connected.is_set():  # a clean stop says so itself (the will is for crashes)
            info = self.client.publish(
                self.topic, json.dumps({"node_id": self.node_id, "state": "offline",
                                        "time": _now_iso()}), qos=1, retain=True)
            try:
                info.wait_for_publish(timeout)
            except (RuntimeError, ValueError):
                pass
        self.client.disconnect()
        self.client.loop_stop()
