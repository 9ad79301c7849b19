#!/usr/bin/env python3
"""Two edge nodes -> mosquitto -> one hub, with a broker outage in the middle; counts.

Starts Debian's mosquitto (persistence on) on a free loopback port, one ``platestream hub``
(SQLite), and two ``platestream run`` nodes decoding the two sample videos in real time (one
each, mqtt output with a 1 s heartbeat, plus a JSON Lines log of what each node produced).
The broker is stopped ``--outage-at`` seconds in for ``--outage`` seconds, while the nodes
keep reading plates into their spools. Then it compares what each node produced with what
the hub stored: lost, doubled, per node, and which labelled plates reached the hub.

    PLATESTREAM_MODELS=../shared/models .venv/bin/python scripts/fleet_demo.py

Writes reports/fleet_demo.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.benchlib import stop_processes, write_report  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--outage-at", type=float, default=3.0)
    ap.add_argument("--outage", type=float, default=6.0)
    ap.add_argument("--out", default="reports/fleet_demo.json")
    args = ap.parse_args()

    import tempfile

    import yaml

    from tests.stream.helpers import free_port, wait_for
    from tests.stream.services import Mosquitto

    data = Path(os.environ.get("PLATESTREAM_DATA", ROOT.parent / "shared" / "evaldata"))
    labels = {json.loads(x)["video"]: [p["text"] for p in json.loads(x)["plates"]]
              for x in (data / "videos.jsonl").read_text().splitlines() if x.strip()}
    videos = {"north": "videos/license_plate.mp4", "south": "videos/cars.mp4"}
    tmp = Path(tempfile.mkdtemp(prefix="fleet-demo-"))
    broker = Mosquitto()
    conf = broker.conf.read_text().replace("persistence false", "persistence true")
    broker.conf.write_text(conf + f"persistence_location {broker.dir}/\nautosave_interval 1\n")
    broker.start()
    hub_port = free_port()
    (tmp / "hub.yaml").write_text(yaml.safe_dump({
        "mqtt": {"host": "127.0.0.1", "port": broker.port, "topic_prefix": "fleet"},
        "store": {"path": "events.sqlite"}, "heartbeat": 1, "state_dir": str(tmp),
        "server": {"host": "127.0.0.1", "port": hub_port}}))
    procs: list[subprocess.Popen] = []
    load_before = os.getloadavg()
    try:
        hub = subprocess.Popen([sys.executable, "-m", "stream.cli", "hub", str(tmp / "hub.yaml")],
                               cwd=ROOT, stdout=open(tmp / "hub.log", "wb"),  # noqa: SIM115
                               stderr=subprocess.STDOUT)
        procs.append(hub)

        def get(path: str):
            import urllib.request

            with urllib.request.urlopen(f"http://127.0.0.1:{hub_port}{path}", timeout=5) as r:
                return json.loads(r.read())

        def up() -> bool:
            try:
                return bool(get("/status/")["connected"])
            except OSError:
                return False

        assert wait_for(up, 30), "the hub did not start"
        nodes = {}
        for name, video in videos.items():
            d = tmp / name
            d.mkdir()
            (d / "node.yaml").write_text(yaml.safe_dump({
                "node_id": name, "output_dir": str(d), "store": {"enabled": False},
                "spool": "spool.sqlite",  # its own (the default is per config name)
                "cameras": {"street": {"url": video, "realtime": True, "sample": 2,
                                       "outputs": ["hub", "log"]}},
                "outputs": {"hub": {"type": "mqtt", "host": "127.0.0.1", "port": broker.port,
                                    "topic_prefix": "fleet", "discovery": False,
                                    "heartbeat": 1},
                            "log": {"type": "jsonl", "file": "events.jsonl"}}}))
            p = subprocess.Popen([sys.executable, "-m", "stream.cli", "run",
                                  str(d / "node.yaml"), "--data-dir", str(data)], cwd=ROOT,
                                 stdout=open(d / "node.log", "wb"),  # noqa: SIM115
                                 stderr=subprocess.STDOUT)
            procs.append(p)
            nodes[name] = (p, d)
        time.sleep(args.outage_at)
        broker.stop()
        t_down = time.monotonic()
        time.sleep(args.outage)
        broker.start()
        outage_s = time.monotonic() - t_down
        rcs = {name: p.wait(600) for name, (p, _) in nodes.items()}
        produced = {}
        for name, (_, d) in nodes.items():
            lines = (d / "events.jsonl").read_text().splitlines() if (
                d / "events.jsonl").exists() else []
            produced[name] = [json.loads(x) for x in lines if x.strip()]
        want = sum(len(v) for v in produced.values())
        wait_for(lambda: len(get("/api/v1/events?limit=1000")["events"]) >= want, 30)
        stored = get("/api/v1/events?limit=1000")["events"]
        status = get("/status/")
        per_node = {}
        for name, evs in produced.items():
            ids = {e["event_id"] for e in evs}
            hub_ids = [e["event_id"] for e in stored if e.get("node") == name]
            plates = sorted({e["plate"].upper() for e in stored if e.get("node") == name})
            per_node[name] = {
                "video": videos[name], "exit_code": rcs[name], "events_produced": len(ids),
                "events_in_hub": len(set(hub_ids)), "lost": len(ids - set(hub_ids)),
                "doubled_rows": len(hub_ids) - len(set(hub_ids)),
                "plates_in_hub": plates,
                "labelled_plates_found": sorted(set(labels[videos[name]]) & set(plates)),
                "labelled_plates": labels[videos[name]],
            }
        report = {
            "what": "two `platestream run` nodes (real-time video, mqtt output) -> mosquitto -> "
                    "`platestream hub` (SQLite); broker stopped while the nodes ran",
            "outage_s": round(outage_s, 1), "outage_at_s": args.outage_at,
            "hub": {"rows": len(stored), "messages_stored": status["events"],
                    "redeliveries_absorbed": status["events"] - len(stored),
                    "invalid": status["invalid"], "nodes": status["nodes"]},
            "nodes": per_node,
            "machine": {"cpus": os.cpu_count(),
                        "loadavg_before": [round(x, 2) for x in load_before],
                        "loadavg_after": [round(x, 2) for x in os.getloadavg()]},
        }
    finally:
        stop_processes(procs)
        broker.close()
    print(json.dumps(report, indent=2))
    write_report(args.out, report)
    lost = sum(n["lost"] for n in per_node.values())
    doubled = sum(n["doubled_rows"] for n in per_node.values())
    return 0 if lost == 0 and doubled == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
