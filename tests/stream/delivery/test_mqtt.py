"""The mqtt output against a real mosquitto on 127.0.0.1: topics, retained messages, Home
Assistant discovery, a broker outage (nothing lost) and a refused login (clear, retried)."""

from __future__ import annotations

import json
import logging
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from stream.delivery import DeliveryWorker, Spool, stop_workers
from stream.delivery.mqtt import MqttSender
from stream.delivery.mqtt_config import MqttConfig
from stream.pipeline import Pipeline
from stream.store import EventQuery
from tests.stream.helpers import make_config, wait_for
from tests.stream.services import Mosquitto


class Listener:
    """A subscriber recording (topic, payload, retained) of everything under the topics."""

    def __init__(self, port: int, topics: tuple[str, ...] = ("#",), *,
                 client_id: str = "", persistent: bool = False) -> None:
        self.messages: list[tuple[str, str, bool]] = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                        clean_session=not persistent, protocol=mqtt.MQTTv311)
        c.reconnect_delay_set(0.2, 1)
        c.on_connect = lambda cl, *_: cl.subscribe([(t, 1) for t in topics])
        c.on_subscribe = lambda *_: self.subscribed.set()
        c.on_message = self._on_message
        c.connect("127.0.0.1", port)
        c.loop_start()
        self.client = c
        assert self.subscribed.wait(10)

    def _on_message(self, client, userdata, msg) -> None:
        with self.lock:
            self.messages.append((msg.topic, msg.payload.decode(), bool(msg.retain)))

    def on(self, topic: str) -> list[str]:
        with self.lock:
            return [p for t, p, _ in self.messages if t == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _event(i: int, plate: str, known: str | None = None) -> dict:
    return {"event_id": f"ev-{i}", "camera_id": "gate", "timestamp": "2026-11-27T08:00:00Z",
            "results": [{"plate": plate, "score": 0.9}],
            "known_plate": {"list": known, "name": "Ann", "plate": plate, "distance": 0}
            if known else None}


def test_topics_retained_messages_and_discovery(broker, tmp_path):
    live = Listener(broker.port)
    spool = Spool(tmp_path / "spool.sqlite")
    cfg = MqttConfig(port=broker.port, reset_after=0.5, node_id="box1")
    w = DeliveryWorker(spool, "ha", MqttSender(cfg, name="ha", cameras=("gate",)))
    w.start()
    try:
        spool.put(["ha"], "ev-1", _event(1, "xy999zz"))
        spool.put(["ha"], "ev-2", _event(2, "ab123cd", known="staff"))
        w.notify()
        assert wait_for(lambda: w.stats()["delivered"] == 2, 20), w.stats()
        events = [json.loads(p) for p in live.on("platestream/events")]
        assert [e["event_id"] for e in events] == ["ev-1", "ev-2"]
        assert events[1]["known_plate"]["list"] == "staff"
        assert live.on("platestream/gate/plate") == ["xy999zz", "ab123cd"]
        # the known topic says the list, then is emptied reset_after seconds later
        assert wait_for(lambda: live.on("platestream/gate/known") == ["", "staff", ""], 10), \
            live.on("platestream/gate/known")
        # a late subscriber (Home Assistant starting) gets the retained state
        late = Listener(broker.port, ("platestream/#", "homeassistant/#"))
        time.sleep(0.5)
        retained = {t: p for t, p, r in late.messages if r}
        late.close()
        assert retained["platestream/gate/plate"] == "ab123cd"
        assert retained["platestream/availability"] == "online"
        assert "platestream/gate/known" not in retained  # emptied = retained message cleared
        assert "platestream/events" not in retained      # retain: false
        sensor = json.loads(retained["homeassistant/sensor/platestream_box1/gate_plate/config"])
        assert sensor["state_topic"] == "platestream/gate/plate"
        assert sensor["availability_topic"] == "platestream/availability"
        assert sensor["device"]["identifiers"] == ["platestream_box1"]
        binary = json.loads(
            retained["homeassistant/binary_sensor/platestream_box1/gate_known/config"])
        assert binary["state_topic"] == "platestream/gate/known"
        assert binary["unique_id"] == "platestream_box1_gate_known"
    finally:
        stop_workers([w], spool)
        live.close()
    # a clean stop says offline (retained), as the last will would on a crash
    late = Listener(broker.port, ("platestream/availability",))
    assert wait_for(lambda: late.on("platestream/availability") == ["offline"], 5)
    late.close()


def test_refused_login_is_clear_retried_and_never_logs_the_password(tmp_path, caplog):
    try:
        b = Mosquitto(users={"cam": "right-pass"})
        b.start()
    except (RuntimeError, OSError) as exc:
        pytest.skip(f"mosquitto cannot start here: {exc}")
    caplog.set_level(logging.INFO)
    spool = Spool(tmp_path / "spool.sqlite")
    cfg = MqttConfig(port=b.port, username="cam", password="wrong-pass-123")
    sender = MqttSender(cfg, name="ha")
    w = DeliveryWorker(spool, "ha", sender, backoff_initial=0.2, backoff_max=0.5)
    w.start()
    try:
        spool.put(["ha"], "ev-1", _event(1, "ab123cd"))
        w.notify()
        assert wait_for(lambda: w.stats()["failed_attempts"] >= 2, 30), w.stats()
        st = {**w.stats(), **sender.status()}
        assert st["pending"] == 1 and st["delivered"] == 0 and not st["connected"]
        assert "refused the connection" in st["connection_error"]
        assert "username and password" in st["connection_error"]
        assert "refused the connection" in st["last_error"]
        assert "wrong-pass-123" not in json.dumps(st) and "wrong-pass-123" not in caplog.text
        assert "wrong-pass-123" not in repr(cfg)
        assert any("refused the connection" in r.getMessage() for r in caplog.records)
    finally:
        stop_workers([w], spool)
        b.close()


def test_broker_down_then_up_loses_nothing(tmp_path, evaldata, engine_worker):
    try:
        b = Mosquitto()
        b.conf.write_text(b.conf.read_text().replace(
            "persistence false", f"persistence true\npersistence_location {b.dir}/"))
        b.start()
    except (RuntimeError, OSError) as exc:
        pytest.skip(f"mosquitto cannot start here: {exc}")
    # a persistent QoS 1 subscriber: the broker keeps what it misses while reconnecting
    sub = Listener(b.port, ("platestream/events",), client_id="test-sub", persistent=True)
    b.stop()
    cfg = make_config(tmp_path, {
        "cameras": {"toll": {"url": str(evaldata / "videos" / "cars.mp4"), "realtime": False,
                             "sample": 2, "outputs": ["ha"]}},
        "outputs": {"ha": {"type": "mqtt", "host": "127.0.0.1", "port": b.port,
                           "backoff_max": 1}},
    })
    try:
        with Pipeline(cfg, engine_worker) as p:
            assert wait_for(p.done, 120), p.status()
            assert wait_for(lambda: p.status()["outputs"]["ha"]["failed_attempts"] >= 2, 20)
            out = p.status()["outputs"]
            sent = out["store"]["delivered"]
            assert sent >= 3 and out["ha"]["pending"] == sent, out
            assert not out["ha"]["connected"] and out["ha"]["last_error"]
            b.start()  # up again: the spool delivers every pending event
            assert p.wait_delivered(60), p.status()["outputs"]
            assert p.status()["outputs"]["ha"]["failed"] == 0
            stored = p.store.query(EventQuery(limit=1000)).events
        assert wait_for(lambda: len(sub.on("platestream/events")) >= sent, 20)
        got = [json.loads(m)["event_id"] for m in sub.on("platestream/events")]
        ids = [e.event_id for e in stored]
        assert set(got) == set(ids) and len(ids) == len(set(ids)) == sent
        print(f"mqtt outage: {sent} events sent, {len(set(got))} received "
              f"({len(got)} messages)")
    finally:
        sub.close()
        b.close()


def test_last_will_says_offline_when_the_process_dies(broker):
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys, time\n"
            "from stream.delivery.mqtt import MqttSender\n"
            "from stream.delivery.mqtt_config import MqttConfig\n"
            f"s = MqttSender(MqttConfig(port={broker.port}, discovery=False))\n"
            "assert s._connected.wait(20)\n"
            "print('READY', flush=True)\n"
            "time.sleep(60)\n")
    root = Path(__file__).resolve().parents[3]
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=root, stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(root)})
    try:
        assert proc.stdout.readline().strip() == "READY"
        watch = Listener(broker.port, ("platestream/availability",))
        assert wait_for(lambda: watch.on("platestream/availability") == ["online"], 5)
        proc.kill()  # no clean disconnect: the broker sends the last will
        assert wait_for(lambda: watch.on("platestream/availability") == ["online", "offline"],
                        10), watch.on("platestream/availability")
        watch.close()
    finally:
        proc.kill()
        proc.wait(10)
