"""The hub: every node's events into one store, every node's heartbeat into a nodes table.

Subscriptions (MQTT 5, QoS 1, a persistent session so the broker keeps what arrives while
the hub restarts):

- ``{prefix}/events`` (one hub), or with ``group`` set ``$share/{group}/{prefix}/events``: a
  *shared* subscription, so hub replicas in the group split the events between them instead
  of each storing all of them. Mosquitto (2.0) does not keep shared subscriptions across a
  broker restart: events published after the restart and before the hubs subscribe again are
  lost there, which a plain persistent subscription does not risk. An event is acknowledged
  only after the store has it (manual acks); the store upserts by ``event_id``, so a
  redelivery (broker or node resend) never makes a second row.
- ``{prefix}/nodes/+/status``: every replica sees every node's retained heartbeat (and the
  broker's last-will "offline"); a node silent for ``2 x heartbeat`` is shown offline too.

Known plates are managed on the hub (its API) and pushed, retained, on
``{prefix}/known_plates`` whenever they change, so every node matches them locally, even while
its link to the hub is down.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from stream.delivery.mqtt_config import report_connect_errors, topic_part
from stream.hub.config import HubConfig
from stream.store import EventStore

__all__ = ["Hub", "SESSION_EXPIRY_S"]

log = logging.getLogger(__name__)

SESSION_EXPIRY_S = 24 * 3600  # the broker keeps the hub's queue this long while it is away


def _parse_time(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and value:
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()
    return None


class Hub:
    """The hub's MQTT side. ``store`` is opened by the caller (and closed by it)."""

    def __init__(self, cfg: HubConfig, store: EventStore, *, client_id: str | None = None
                 ) -> None:
        self.cfg = cfg
        self.store = store
        self.prefix = cfg.mqtt.topic_prefix
        self.broker = f"{cfg.mqtt.host}:{cfg.mqtt.port}"
        self._lock = threading.Lock()
        self._nodes: dict[str, dict[str, Any]] = {}
        self.counts = {"events": 0, "invalid": 0, "store_errors": 0, "statuses": 0}
        self.connected = threading.Event()
        self.last_error: str | None = None
        self.known = None  # KnownPlates to push to the nodes (set_known)
        self._known_sent: str | None = None
        self._stop = threading.Event()
        self._pusher = threading.Thread(target=self._push_loop, name="hub:known", daemon=True)
        cid = client_id or (f"platestream-hub-{topic_part(socket.gethostname())}-"
                            f"{cfg.server.port}")
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cid, protocol=mqtt.MQTTv5)
        m = cfg.mqtt
        m.apply(c)
        report_connect_errors(c, self.broker, self._error)
        c.manual_ack_set(True)
        c.reconnect_delay_set(0.5, 5)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        self.client = c

    # -- connection ------------------------------------------------------------------------
    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = SESSION_EXPIRY_S
        try:
            self.client.connect_async(self.cfg.mqtt.host, self.cfg.mqtt.port,
                                      keepalive=self.cfg.mqtt.keepalive, clean_start=False,
                                      properties=props)
        except (OSError, ValueError) as exc:
            self._error(f"cannot connect to {self.broker}: {exc}")
        self.client.loop_start()

    def set_known(self, known) -> None:  # noqa: ANN001 - KnownPlates
        self.known = known
        if not self._pusher.is_alive():
            self._pusher.start()

    def _push_loop(self) -> None:
        while not self._stop.wait(1.0):  # bounded: ends with stop()
            self.push_known()

    def push_known(self) -> bool:
        """Publish the known plates (retained) if they changed since the last push."""
        if self.known is None or not self.connected.is_set():
            return False
        body = json.dumps({**self.known.snapshot()}, sort_keys=True)
        if body == self._known_sent:
            return False
        info = self.client.publish(f"{self.prefix}/known_plates", body, qos=1, retain=True)
        self._known_sent = body
        log.info("hub: known plates pushed to the nodes (mid %s)", info.mid)
        return True

    def stop(self) -> None:
        self._stop.set()
        self.client.disconnect()
        self.client.loop_stop()

    def _error(self, message: str) -> None:
        if message != self.last_error:
            log.warning("hub: %s; retrying", message)
        self.last_error = message

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                    properties: Any = None) -> None:
        if reason.is_failure:
            hint = " (check mqtt.username and mqtt.password)" if "authori" in str(
                reason).lower() or "password" in str(reason).lower() else ""
            self._error(f"broker {self.broker} refused the connection: {reason}{hint}")
            return
        self.last_error = None
        events = (f"$share/{self.cfg.group}/{self.prefix}/events" if self.cfg.group
                  else f"{self.prefix}/events")
        log.info("hub: connected to %s, subscribed to %s", self.broker, events)
        q1 = SubscribeOptions(qos=1)
        client.subscribe([(events, q1),
                          (f"{self.prefix}/nodes/+/status", q1)])
        self._known_sent = None  # push again on every (re)connection
        self.connected.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                       properties: Any = None) -> None:
        was_connected = self.connected.is_set()
        self.connected.clear()
        if not reason.is_failure:
            return
        if was_connected:
            self._error(f"lost the connection to {self.broker}: {reason}")
        elif self.last_error is None:  # a refusal (on_connect) already said why
            self._error(f"the broker {self.broker} closed the connection before accepting it "
                        f"({reason}; with TLS: does it want a client certificate, "
                        f"tls.certfile?)")

    # -- messages (paho's network thread) ------------------------------------------------------
    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.topic.startswith(f"{self.prefix}/nodes/") and msg.topic.endswith("/status"):
            self._status(msg)
            client.ack(msg.mid, msg.qos)
            return
        try:
            data = json.loads(msg.payload)
            if not isinstance(data, dict) or not data.get("event_id"):
                raise ValueError("not an event (no event_id)")
        except ValueError as exc:
            with self._lock:
                self.counts["invalid"] += 1
            log.warning("hub: %s: dropped a message that is not an event: %s", msg.topic, exc)
            client.ack(msg.mid, msg.qos)
            return
        try:
            self.store.put(data, source="camera")
        except Exception as exc:  # the store is down: leave it unacknowledged (redelivered)
            with self._lock:
                self.counts["store_errors"] += 1
            self._error(f"store: {type(exc).__name__}: {exc}")
            return
        with self._lock:
            self.counts["events"] += 1
            node = str(data.get("node_id") or "")
            if node:
                n = self._nodes.setdefault(node, {"node_id": node, "state": "unknown",
                                                  "last_seen": None, "status": None})
                n["last_event"] = time.time()
        client.ack(msg.mid, msg.qos)

    def _status(self, msg: mqtt.MQTTMessage) -> None:
        node = msg.topic[len(self.prefix) + len("/nodes/"):-len("/status")]
        raw = msg.payload.decode("utf-8", "replace").strip()
        try:
            body = json.loads(raw) if raw.startswith("{") else {"state": raw or "offline"}
        except ValueError:
            body = {"state": "unknown"}
        now = time.time()
        seen: float | None = now
        if msg.retain:  # kept by the broker: as old as the node's own clock says
            seen = _parse_time(body.get("time")) or now
        with self._lock:
            self.counts["statuses"] += 1
            n = self._nodes.setdefault(node, {"node_id": node})
            if body.get("state") != "online":
                if "time" not in body:  # the broker's last will: last seen is its last word
                    seen = n.get("last_seen")
                if n.get("status"):
                    body = {**n["status"], **body}  # offline: keep what it last said it runs
            n.update(state=str(body.get("state") or "unknown"), last_seen=seen, status=body)

    # -- views ---------------------------------------------------------------------------------
    def nodes(self, now: float | None = None) -> list[dict[str, Any]]:
        """Every node heard of: online/offline (offline: its will, a clean stop, or silent for
        2 x heartbeat), last seen, cameras with their state."""
        now = time.time() if now is None else now
        out = []
        with self._lock:
            items = [dict(n) for n in self._nodes.values()]
        for n in sorted(items, key=lambda n: n["node_id"]):
            status = n.get("status") or {}
            seen = n.get("last_seen")
            state = n.get("state") or "unknown"
            beat = _heartbeat(status.get("heartbeat"), self.cfg.heartbeat)
            if state == "online" and (seen is None or now - seen > 2 * beat):
                state = "offline"
            out.append({
                "node_id": n["node_id"],
                "online": state == "online",
                "state": state,
                "last_seen": _iso(seen),
                "last_seen_s": None if seen is None else round(max(0.0, now - seen), 1),
                "heartbeat": beat,
                "last_event": _iso(n.get("last_event")),
                "version": status.get("version"),
                "cameras": _mapping(status.get("cameras"), nested=True),
                "outputs_pending": status.get("outputs_pending"),
                "engine": _mapping(status.get("engine")),
            })
        return out

    def link(self) -> dict[str, Any]:
        """The broker link and the counters (cheap: no store query)."""
        with self._lock:
            counts = dict(self.counts)
        return {"broker": self.broker, "connected": self.connected.is_set(),
                "last_error": self.last_error, "group": self.cfg.group, **counts}

    def status(self) -> dict[str, Any]:
        return {**self.link(), "nodes": {n["node_id"]: n["state"] for n in self.nodes()},
                "store": self.store.stats(), "pid": os.getpid()}


def _mapping(value: Any, nested: bool = False) -> dict[str, Any]:
    """A node's status is its own JSON: what is not the expected mapping shows as nothing."""
    if not isinstance(value, dict):
        return {}
    return {str(k): v for k, v in value.items() if not nested or isinstance(v, dict)}


def _heartbeat(advertised: Any, default: float) -> float:
    """The node's own heartbeat (its status says it) wins over the hub's ``heartbeat``."""
    if isinstance(advertised, (int, float)) and not isinstance(advertised, bool) \
            and advertised > 0:
        return float(advertised)
    return default


def _iso(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
