#!/usr/bin/env python3
"""MQTT output through a broker outage: events sent vs received, nothing lost, no duplicate rows.

    .venv/bin/python scripts/mqtt_outage.py [--events 300] [--outage 10] [--out FILE]

Starts Debian's mosquitto on a free 127.0.0.1 port (persistent sessions), a persistent QoS 1
subscriber on ``platestream/events``, and the real delivery path: a spool, the ``mqtt`` output
(MqttSender) and the event store (StoreSender, SQLite). A third of the events are spooled
with the broker up, a third while it is down for ``--outage`` seconds, a third after it is back.
Writes JSON: sent, received (distinct event_ids and messages), lost, store rows and duplicate
rows, seconds to drain after the broker came back.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import paho.mqtt.client as mqtt  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from stream.delivery import DeliveryWorker, Spool, stop_workers  # noqa: E402
from stream.delivery.mqtt import MqttSender  # noqa: E402
from stream.delivery.mqtt_config import MqttConfig  # noqa: E402
from stream.store import StoreConfig, open_store  # noqa: E402
from stream.store.feed import STORE_OUTPUT, StoreSender, store_payload  # noqa: E402
from tests.stream.services import Mosquitto  # noqa: E402


def _event(i: int) -> dict:
    ts = datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
    return {"event_id": f"outage-{i:05d}", "camera_id": "gate", "timestamp": ts,
            "results": [{"plate": f"ab{i:05d}", "score": 0.9, "dscore": 0.8}],
            "known_plate": None}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=300)
    ap.add_argument("--outage", type=float, default=10.0, help="seconds the broker is down")
    ap.add_argument("--out", default="reports/mqtt_outage.json")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="mqtt-outage-"))
    broker = Mosquitto()
    broker.conf.write_text(broker.conf.read_text().replace(
        "persistence false", f"persistence true\npersistence_location {broker.dir}/"))
    broker.start()
    got: list[str] = []
    lock = threading.Lock()
    subscribed = threading.Event()

    def on_message(client, userdata, msg) -> None:  # noqa: ANN001
        with lock:
            got.append(json.loads(msg.payload)["event_id"])

    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="outage-sub", clean_session=False)
    sub.reconnect_delay_set(0.2, 1)
    sub.on_connect = lambda c, *_: c.subscribe("platestream/events", qos=1)
    sub.on_subscribe = lambda *_: subscribed.set()
    sub.on_message = on_message
    sub.connect("127.0.0.1", broker.port)
    sub.loop_start()
    assert subscribed.wait(10), "subscriber did not subscribe"
    store = open_store(StoreConfig(), tmp / "state")
    spool = Spool(tmp / "spool.sqlite")
    sender = MqttSender(MqttConfig(port=broker.port, discovery=False), name="ha")
    workers = [DeliveryWorker(spool, "ha", sender, backoff_max=2.0),
               DeliveryWorker(spool, STORE_OUTPUT, StoreSender(store))]
    for w in workers:
        w.start()
    third = a.events // 3
    gap = a.outage / max(1, third)

    def put(i: int) -> None:
        data = _event(i)
        spool.put(["ha"], data["event_id"], data)  # as the pipeline spools them
        spool.put([STORE_OUTPUT], data["event_id"], store_payload(data, {}))
        for w in workers:
            w.notify()

    try:
        for i in range(third):
            put(i)
        time.sleep(1.0)
        broker.stop()
        t_down = time.monotonic()
        for i in range(third, 2 * third):
            put(i)
            time.sleep(gap)
        broker.start()
        t_up = time.monotonic()
        for i in range(2 * third, a.events):
            put(i)
        deadline = time.monotonic() + 120
        while workers[0].stats()["pending"] and time.monotonic() < deadline:
            time.sleep(0.1)
        drained = time.monotonic() - t_up
        time.sleep(1.0)  # the subscriber's last messages
        with lock:
            received = list(got)
        rows = store.db.read("SELECT COUNT(*), COUNT(DISTINCT event_id) FROM events")[0]
        sent = {f"outage-{i:05d}" for i in range(a.events)}
        result = {
            "script": "scripts/mqtt_outage.py", "events_sent": a.events,
            "outage_s": round(t_up - t_down, 1),
            "received_distinct": len(set(received) & sent),
            "received_messages": len(received),
            "lost": len(sent - set(received)),
            "mqtt_pending_after": workers[0].stats()["pending"],
            "mqtt_failed_attempts": workers[0].stats()["failed_attempts"],
            "store_rows": rows[0], "store_duplicate_rows": rows[0] - rows[1],
            "drain_after_up_s": round(drained, 1),
            "load_average": os.getloadavg(),
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
        }
    finally:
        stop_workers(workers, spool)
        store.close()
        sub.disconnect()
        sub.loop_stop()
        broker.close()
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(result, indent=2))
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["lost"] == 0 and result["store_duplicate_rows"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
