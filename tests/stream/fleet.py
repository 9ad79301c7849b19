"""Real fleet parts for the hub tests: a `platestream hub` process, the node side of an mqtt
output (spool -> MqttSender) in-process, and a real `platestream run` node process.

``mqtt`` dicts add broker settings (TLS, username, password) to every part's config."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from stream.delivery import DeliveryWorker, Spool, stop_workers
from stream.delivery.mqtt import MqttSender
from stream.delivery.mqtt_config import MqttConfig
from tests.stream.helpers import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "fleet"


class HubProcess:
    def __init__(self, tmp: Path, broker_port: int, name: str, store: dict,
                 group: str | None = None, *, heartbeat: float = 1.0,
                 token: str | None = None, mqtt: dict[str, Any] | None = None,
                 wait_connected: bool = True) -> None:
        self.port = free_port()
        self.token = token
        self.dir = tmp / name
        self.dir.mkdir()
        cfg = {"mqtt": {"host": "127.0.0.1", "port": broker_port, "topic_prefix": PREFIX,
                        "keepalive": 5, **(mqtt or {})},
               "store": store, "server": {"host": "127.0.0.1", "port": self.port,
                                          "token": token},
               "heartbeat": heartbeat, "group": group,
               "known_plates": {"staff": {"plates": ["STAFF1", "LS15EBC"]}}}
        (self.dir / "hub.yaml").write_text(yaml.safe_dump(cfg))
        self.log = open(self.dir / "hub.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "stream.cli", "hub", str(self.dir / "hub.yaml")],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT)
        self.base = f"http://127.0.0.1:{self.port}"
        up = self._connected if wait_connected else self._serving
        assert wait_for(up, 30), self.tail()

    def _serving(self) -> bool:
        assert self.proc.poll() is None, self.tail()
        try:
            self.get("/status/")
            return True
        except OSError:
            return False

    def _connected(self) -> bool:
        return self._serving() and self.get("/status/")["connected"]

    def get(self, path: str):
        req = urllib.request.Request(self.base + path)
        if self.token:
            req.add_header("Authorization", f"Token {self.token}")
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())

    def events(self, query: str = "") -> list[dict]:
        return self.get(f"/api/v1/events?limit=1000{query}")["events"]

    def nodes(self) -> dict[str, dict]:
        return {n["node_id"]: n for n in self.get("/api/v1/nodes")["nodes"]}

    def tail(self) -> str:
        return (self.dir / "hub.log").read_text(errors="replace")[-2000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


class Node:
    """The node side of `platestream run` with an mqtt output: spool -> MqttSender."""

    def __init__(self, tmp: Path, broker_port: int, node_id: str,
                 mqtt: dict[str, Any] | None = None) -> None:
        self.node_id = node_id
        self.cfg = MqttConfig(host="127.0.0.1", port=broker_port, topic_prefix=PREFIX,
                              node_id=node_id, discovery=False, **(mqtt or {}))
        self.spool = Spool(tmp / f"{node_id}-spool.sqlite")
        self.sender = MqttSender(self.cfg, name="hub", cameras=("gate",))
        self.worker = DeliveryWorker(self.spool, "hub", self.sender, backoff_initial=0.2,
                                     backoff_max=1.0)
        self.worker.start()
        self.n = 0

    def event(self, plate: str) -> str:
        self.n += 1
        eid = f"{self.node_id}-{self.n}"
        self.spool.put(["hub"], eid, {
            "event_id": eid, "camera_id": "gate", "timestamp": "2026-11-27T08:00:00Z",
            "results": [{"plate": plate, "score": 0.9, "box": {"xmin": 1, "ymin": 2,
                                                                "xmax": 3, "ymax": 4}}]})
        self.worker.notify()
        return eid

    def pending(self) -> int:
        return self.spool.counts("hub")["pending"]

    def close(self) -> None:
        stop_workers([self.worker], self.spool, 10)
        self.sender.close()


def run_node(tmp: Path, broker_port: int, node_id: str, video: str, data_dir: Path, *,
             heartbeat: float = 1, realtime: bool = False, mqtt: dict[str, Any] | None = None,
             server_port: int | None = None):
    """A real `platestream run` node with an mqtt output "hub" (and a JSONL log of its events).
    Returns (process, its log file, its directory)."""
    d = tmp / node_id
    d.mkdir()
    cam = {"url": video, "realtime": realtime, "sample": 2, "outputs": ["hub", "log"]}
    if realtime:
        cam["loop"] = True
    cfg = {"node_id": node_id, "output_dir": str(d), "store": {"enabled": False},
           "spool": "spool.sqlite",  # its own spool (the default one is per config name)
           "cameras": {"street": cam},
           "outputs": {"hub": {"type": "mqtt", "host": "127.0.0.1", "port": broker_port,
                               "topic_prefix": PREFIX, "discovery": False,
                               "heartbeat": heartbeat, **(mqtt or {})},
                       "log": {"type": "jsonl", "file": "events.jsonl"}}}
    if server_port is not None:
        cfg["server"] = {"host": "127.0.0.1", "port": server_port}
    (d / "node.yaml").write_text(yaml.safe_dump(cfg))
    log = open(d / "node.log", "wb")  # noqa: SIM115 - closed by the caller
    proc = subprocess.Popen([sys.executable, "-m", "stream.cli", "run", str(d / "node.yaml"),
                             "--data-dir", str(data_dir), "--workers", "1"],
                            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    return proc, log, d


def stop_node(proc: subprocess.Popen, log) -> None:  # noqa: ANN001
    """Kill a ``run_node`` process that is still running and close its log."""
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)
    log.close()
