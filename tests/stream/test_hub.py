"""Edge nodes -> a real mosquitto -> ``platestream hub`` processes, all on 127.0.0.1.

Nodes here are the real node-side parts (the spool, a DeliveryWorker with the mqtt output's
MqttSender, the NodeStatusPublisher heartbeat); hubs are real ``platestream hub`` processes
reading a real broker (Debian's mosquitto, with persistence so a restart keeps the hubs'
sessions, as docs/deploy.md recommends).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator

import pytest

from stream.delivery.mqtt_config import MqttConfig
from stream.delivery.spool import Item
from stream.node_status import NodeStatusPublisher
from tests.stream.fleet import ROOT, HubProcess, Node, run_node, stop_node
from tests.stream.helpers import wait_for
from tests.stream.services import Mosquitto

HEARTBEAT = 1.0


@pytest.fixture
def broker(tmp_path) -> Iterator[Mosquitto]:
    try:
        b = Mosquitto()
    except (RuntimeError, OSError) as exc:
        pytest.skip(f"mosquitto cannot start here: {exc}")
    # the production setting: sessions and queued messages survive a broker restart
    conf = b.conf.read_text().replace("persistence false", "persistence true")
    b.conf.write_text(conf + f"persistence_location {b.dir}/\nautosave_interval 1\n")
    try:
        b.start()
    except (RuntimeError, OSError) as exc:
        b.close()
        pytest.skip(f"mosquitto cannot start here: {exc}")
    yield b
    b.close()


def _ids(events: list[dict]) -> list[str]:
    return sorted(e["event_id"] for e in events)


def test_two_nodes_one_hub_outage_and_redelivery(broker, tmp_path):
    hub = HubProcess(tmp_path, broker.port, "hub", {"path": "events.sqlite"})
    north, south = Node(tmp_path, broker.port, "north"), Node(tmp_path, broker.port, "south")
    try:
        sent = [north.event("AB123CD"), north.event("STAFF1"), south.event("XY987ZT"),
                south.event("KL555MN")]
        assert wait_for(lambda: len(hub.events()) == 4, 30), hub.tail()
        assert _ids(hub.events("&node=north")) == ["north-1", "north-2"]
        assert {e["node"] for e in hub.events()} == {"north", "south"}

        # a redelivery (a node resending after a lost PUBACK) never makes a second row
        again = hub.get("/api/v1/events/north-1")["data"]
        north.sender(Item(0, "hub", "north-1", again, None, None, 1, time.time()))
        time.sleep(1.0)
        assert len(hub.events()) == 4

        # broker down: the nodes keep their events in the spool; back up: all arrive, once
        broker.stop()
        sent += [north.event("EF456GH"), south.event("IJ789KL")]
        time.sleep(1.5)
        assert north.pending() == 1 and south.pending() == 1
        broker.start()
        assert wait_for(lambda: north.pending() == 0 and south.pending() == 0, 30)
        assert wait_for(lambda: len(hub.events()) == 6, 30), hub.tail()
        assert _ids(hub.events()) == sorted(sent)  # nothing lost, nothing doubled
        assert hub.get("/status/")["invalid"] == 0
    finally:
        north.close()
        south.close()
        hub.stop()


_NODE_SCRIPT = textwrap.dedent("""
    import sys, time
    from stream.delivery.mqtt_config import MqttConfig
    from stream.node_status import NodeStatusPublisher
    cfg = MqttConfig(host="127.0.0.1", port=int(sys.argv[1]), topic_prefix="fleet",
                     discovery=False)
    status = {"cameras": {"gate": {"state": "running", "fps": 10.0, "events": 3}},
              "outputs": {"hub": {"type": "mqtt", "pending": 0}},
              "engine": {"backend": "onnxruntime:CPUExecutionProvider"}}
    p = NodeStatusPublisher(cfg, sys.argv[2], float(sys.argv[3]), lambda: status)
    p.start()
    print("STARTED", flush=True)
    time.sleep(120)
""")


def test_node_heartbeat_then_killed_node_is_offline_within_two_heartbeats(broker, tmp_path):
    hub = HubProcess(tmp_path, broker.port, "hub", {"path": "events.sqlite"})
    node = subprocess.Popen([sys.executable, "-c", _NODE_SCRIPT, str(broker.port), "east",
                             str(HEARTBEAT)], stdout=subprocess.PIPE, cwd=ROOT)
    try:
        def east():
            return {n["node_id"]: n for n in hub.get("/api/v1/nodes")["nodes"]}.get("east")

        assert wait_for(lambda: (east() or {}).get("online"), 30), hub.tail()
        n = east()
        assert n["cameras"]["gate"]["state"] == "running" and n["version"]
        assert n["engine"]["backend"].startswith("onnxruntime")
        node.send_signal(signal.SIGKILL)
        node.wait(10)
        t0 = time.monotonic()
        assert wait_for(lambda: not east()["online"], 2 * HEARTBEAT + 5)
        assert time.monotonic() - t0 <= 2 * HEARTBEAT + 1.5  # polling slack
    finally:
        if node.poll() is None:
            node.kill()
            node.wait(5)
        hub.stop()


def test_clean_stop_says_offline_at_once(broker, tmp_path):
    hub = HubProcess(tmp_path, broker.port, "hub", {"path": "events.sqlite"})
    cfg = MqttConfig(host="127.0.0.1", port=broker.port, topic_prefix="fleet", discovery=False)
    pub = NodeStatusPublisher(cfg, "west", 30.0, lambda: {"cameras": {}})
    pub.start()
    try:
        def west():
            return {n["node_id"]: n for n in hub.get("/api/v1/nodes")["nodes"]}.get("west")

        assert wait_for(lambda: (west() or {}).get("online"), 20), hub.tail()
    finally:
        pub.stop()
    assert wait_for(lambda: west()["state"] == "offline", 5)
    hub.stop()


def test_two_hubs_on_one_postgresql_store_each_event_once(broker, tmp_path):
    try:
        from tests.stream.services import Postgres

        pg = Postgres()
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"PostgreSQL cannot start here: {exc}")
    try:
        url = pg.create_db("hub")
        hubs = [HubProcess(tmp_path, broker.port, f"hub{i}", {"url": url}, group="hubs")
                for i in (1, 2)]
        node = Node(tmp_path, broker.port, "north")
        try:
            sent = [node.event(f"AB{i:03d}CD") for i in range(12)]
            assert wait_for(lambda: len(hubs[0].events()) == 12, 30), hubs[0].tail()
            assert _ids(hubs[1].events()) == sorted(sent)
            stored = [h.get("/status/")["events"] for h in hubs]
            # the shared subscription split the events: each stored by exactly one hub
            assert sum(stored) == 12 and all(s > 0 for s in stored), stored
        finally:
            node.close()
            for h in hubs:
                h.stop()
    finally:
        pg.close()


def test_run_nodes_deliver_every_event_to_the_hub_with_their_node(broker, tmp_path, evaldata):
    hub = HubProcess(tmp_path, broker.port, "hub", {"path": "events.sqlite"})
    nodes = {"north": "videos/license_plate.mp4", "south": "videos/cars.mp4"}
    procs = {n: run_node(tmp_path, broker.port, n, v, evaldata) for n, v in nodes.items()}
    try:
        for proc, log, d in procs.values():
            rc = proc.wait(300)
            log.close()
            assert rc == 0, (d / "node.log").read_text()[-2000:]
        seen = {}
        for name, (_, _, d) in procs.items():
            lines = (d / "events.jsonl").read_text().splitlines()
            seen[name] = {json.loads(x)["event_id"] for x in lines if x.strip()}
            assert seen[name], f"node {name} produced no event"
        total = sum(len(v) for v in seen.values())
        assert wait_for(lambda: len(hub.events()) == total, 30), hub.tail()
        for name, ids in seen.items():  # every event, once, with the node that saw it
            assert {e["event_id"] for e in hub.events(f"&node={name}")} == ids
        plates = {e["plate"].upper() for e in hub.events()}
        assert "LS15EBC" in plates  # the labelled plate of the north node's video
        nodes_view = {n["node_id"]: n for n in hub.get("/api/v1/nodes")["nodes"]}
        assert set(nodes_view) >= {"north", "south"}
        # the hub's known plates reached the node before its plate: matched on the node
        north_events = [json.loads(x) for x in
                        (procs["north"][2] / "events.jsonl").read_text().splitlines() if x]
        ls15 = [e for e in north_events if e["results"][0]["plate"].upper() == "LS15EBC"]
        assert ls15 and all((e.get("known_plate") or {}).get("list") == "staff" for e in ls15)
        saved = json.loads((procs["north"][2] / "known_plates_hub.json").read_text())
        assert {p["plate"].upper() for p in saved["plates"]} == {"STAFF1", "LS15EBC"}
        # both ended cleanly: offline, with the cameras they last reported
        assert nodes_view["north"]["state"] == "offline"
        assert "street" in nodes_view["north"]["cameras"]
    finally:
        for proc, log, _ in procs.values():
            stop_node(proc, log)
        hub.stop()


def test_known_plates_are_pushed_to_nodes_and_read_only_there(broker, tmp_path):
    from stream.known_plates import KnownPlates, KnownPlatesError

    hub = HubProcess(tmp_path, broker.port, "hub", {"path": "events.sqlite"})
    got: list[dict] = []
    cfg = MqttConfig(host="127.0.0.1", port=broker.port, topic_prefix="fleet", discovery=False)
    pub = NodeStatusPublisher(cfg, "west", 30.0, lambda: {}, on_known=got.append)
    pub.start()
    try:
        assert wait_for(lambda: got and {p["plate"].upper() for p in got[-1]["plates"]} == {
            "STAFF1", "LS15EBC"}, 20), hub.tail()
        req = urllib.request.Request(
            f"http://127.0.0.1:{hub.port}/api/v1/known-plates", method="POST",
            data=json.dumps({"list": "banned", "plate": "BAD666"}).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as r:
            assert r.status == 201
        assert wait_for(lambda: "BAD666" in {p["plate"].upper() for p in got[-1]["plates"]}, 10)
    finally:
        pub.stop()
        hub.stop()

    # on the node: matched like its own lists, read-only, its own entries win
    known = KnownPlates()
    known.add("staff", "STAFF1", name="mine")
    assert known.set_remote(got[-1]) == 2  # STAFF1 is the node's own: kept
    assert known.match("BAD666")["list"] == "banned"
    assert known.match("STAFF1")["name"] == "mine"
    with pytest.raises(KnownPlatesError, match="comes from the hub"):
        known.delete("banned", "BAD666")
    assert known.set_remote({"lists": [], "plates": []}) == 0
    assert known.match("BAD666") is None
