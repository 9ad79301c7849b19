"""MQTT delivery of events (paho-mqtt 2), with Home Assistant discovery.

Topics (``{p}`` = ``topic_prefix``, camera names made topic-safe):
  ``{p}/events``           every event, JSON (the Plate Recognizer event with ``known_plate``)
  ``{p}/{camera}/plate``   the last plate, retained
  ``{p}/{camera}/known``   the known-plate list name ("" for an unknown plate), retained, and
                           emptied again ``reset_after`` seconds later so a plate can re-trigger
  ``{p}/availability``     ``online`` / ``offline`` (the last will), retained

An item counts as delivered only when every publish of it is acknowledged (QoS 1: PUBACK);
otherwise it stays in the spool and is retried, so a broker outage loses nothing.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from engine import __version__
from stream.delivery.mqtt_config import MqttConfig, report_connect_errors, topic_part
from stream.delivery.spool import Item
from stream.delivery.worker import DeliveryError

__all__ = ["MqttSender"]

log = logging.getLogger(__name__)

FIRST_CONNECT_WAIT_S = 5.0


class MqttSender:
    """A ``send`` for DeliveryWorker; paho's network thread keeps (re)connecting."""

    def __init__(self, cfg: MqttConfig, *, name: str = "mqtt",
                 cameras: tuple[str, ...] = ()) -> None:
        self.cfg = cfg
        self.name = name
        self.prefix = cfg.topic_prefix
        self.broker = f"{cfg.host}:{cfg.port}"
        self._cameras = {topic_part(c): c for c in cameras}
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self._error: str | None = None
        self._logged_error: str | None = None
        self._timers: dict[str, threading.Timer] = {}
        self._closed = False
        c = mqtt.Client(CallbackAPIVersion.VERSION2,
                        client_id=cfg.client_id or f"platestream-{cfg.node_id}-{topic_part(name)}",
                        protocol=mqtt.MQTTv311)
        cfg.apply(c)
        report_connect_errors(c, self.broker, self._set_error)
        c.will_set(self._t("availability"), "offline", qos=1, retain=True)
        c.reconnect_delay_set(1, 10)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        self.client = c
        try:
            c.connect_async(cfg.host, cfg.port, keepalive=cfg.keepalive)
        except (OSError, ValueError) as exc:
            self._set_error(f"cannot connect to {self.broker}: {exc}")
        c.loop_start()

    def _t(self, *parts: str) -> str:
        return "/".join((self.prefix, *parts))

    # -- paho callbacks (its network thread) ----------------------------------------------
    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                    properties: Any = None) -> None:
        if reason.is_failure:
            hint = ""
            if "not authori" in str(reason).lower() or "user name or password" in str(reason):
                hint = " (check the output's username and password)"
            self._set_error(f"broker {self.broker} refused the connection: {reason}{hint}")
            return
        self._error = None
        if self._logged_error is not None:
            log.info("mqtt %s: connected to %s", self.name, self.broker)
            self._logged_error = None
        client.publish(self._t("availability"), "online", qos=1, retain=True)
        if self.cfg.discovery:
            client.subscribe(f"{self.cfg.discovery_prefix}/status", qos=1)
            for cam in list(self._cameras):
                self._publish_discovery(cam)
        self._connected.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                       properties: Any = None) -> None:
        self._connected.clear()
        if not self._closed and reason.is_failure and self._error is None:
            why = "the broker closed it or went away" if str(reason) == "Unspecified error" \
                else str(reason)
            self._set_error(f"lost the connection to {self.broker} ({why})")

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        # Home Assistant announces its (re)start: send the discovery configs again.
        if msg.topic.endswith("/status") and msg.payload == b"online":
            for cam in list(self._cameras):
                self._publish_discovery(cam)

    def _set_error(self, message: str) -> None:
        self._error = message
        if message != self._logged_error:  # once per distinct problem, not per retry
            log.warning("mqtt %s: %s; retrying", self.name, message)
            self._logged_error = message

    # -- Home Assistant discovery -----------------------------------------------------------
    def _device(self) -> dict[str, Any]:
        node = self.cfg.node_id
        return {"identifiers": [f"platestream_{node}"], "name": f"platestream {node}",
                "manufacturer": "platestream", "model": "platestream", "sw_version": __version__}

    def discovery_configs(self, cam: str) -> dict[str, dict[str, Any]]:
        """Topic -> config of the camera's "last plate" sensor and "known plate" binary
        sensor (both grouped under this node's device)."""
        node, dp, name = self.cfg.node_id, self.cfg.discovery_prefix, self._cameras.get(cam, cam)
        common = {"availability_topic": self._t("availability"), "device": self._device()}
        return {
            f"{dp}/sensor/platestream_{node}/{cam}_plate/config": {
                "name": f"{name} last plate", "unique_id": f"platestream_{node}_{cam}_plate",
                "state_topic": self._t(cam, "plate"), "icon": "mdi:card-text-outline",
                **common},
            f"{dp}/binary_sensor/platestream_{node}/{cam}_known/config": {
                "name": f"{name} known plate", "unique_id": f"platestream_{node}_{cam}_known",
                "state_topic": self._t(cam, "known"),
                "value_template": "{{ 'ON' if value else 'OFF' }}",
                "payload_on": "ON", "payload_off": "OFF", "icon": "mdi:car-key", **common},
        }

    def _publish_discovery(self, cam: str) -> list[mqtt.MQTTMessageInfo]:
        return [self.client.publish(topic, json.dumps(body), qos=1, retain=True)
                for topic, body in self.discovery_configs(cam).items()]

    # -- delivery ------------------------------------------------------------------------------
    def __call__(self, item: Item) -> None:
        if not self._connected.is_set():
            self._connected.wait(FIRST_CONNECT_WAIT_S)
        if not self._connected.is_set():
            # Publishing now would only pile copies up in paho's queue: retry the row later.
            raise DeliveryError(self._error or f"not connected to {self.broker}")
        data = item.payload
        cam_name = str(data.get("camera_id") or "snapshot")
        cam = topic_part(cam_name)
        infos = []
        if self.cfg.discovery and cam not in self._cameras:
            self._cameras[cam] = cam_name
            infos += self._publish_discovery(cam)
        results = data.get("results") or [{}]
        known = data.get("known_plate")
        known_list = str(known.get("list")) if isinstance(known, dict) else ""
        q = self.cfg.qos
        # node_id: which edge node saw it (a hub stores many nodes' events)
        infos.append(self.client.publish(self._t("events"),
                                         json.dumps({**data, "node_id": self.cfg.node_id}),
                                         qos=q, retain=self.cfg.retain))
        infos.append(self.client.publish(self._t(cam, "plate"), str(results[0].get("plate", "")),
                                         qos=q, retain=True))
        infos.append(self.client.publish(self._t(cam, "known"), known_list, qos=q, retain=True))
        for info in infos:
            try:
                info.wait_for_publish(self.cfg.publish_timeout)
            except (RuntimeError, ValueError) as exc:
                raise DeliveryError(f"publish to {self.broker} failed: {exc}") from None
            if not info.is_published():
                raise DeliveryError(self._error or
                                    f"no acknowledgement from {self.broker} within "
                                    f"{self.cfg.publish_timeout:g} s")
        if known_list and self.cfg.reset_after > 0:
            self._arm_reset(cam)

    def _arm_reset(self, cam: str) -> None:
        with self._lock:
            old = self._timers.pop(cam, None)
            if old is not None:
                old.cancel()
            if self._closed:
                return
            t = threading.Timer(self.cfg.reset_after, self._reset_known, (cam,))
            t.daemon = True
            t.name = f"mqtt:{self.name}:reset:{cam}"
            self._timers[cam] = t
            t.start()

    def _reset_known(self, cam: str) -> None:
        with self._lock:
            self._timers.pop(cam, None)
        self.client.publish(self._t(cam, "known"), "", qos=self.cfg.qos, retain=True)

    def status(self) -> dict[str, Any]:
        return {"broker": self.broker, "connected": self._connected.is_set(),
                "connection_error": self._error}

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for t in self._timers.values():
                t.cancel()
            self._timers.clear()
        if self._connected.is_set():
            info = self.client.publish(self._t("availability"), "offline", qos=1, retain=True)
            try:
                info.wait_for_publish(2.0)
            except (RuntimeError, ValueError):
                pass
        self.client.disconnect()
        self.client.loop_stop()
