"""The hub's console for the docs (``scripts/console_screenshots.py --hub``): a real mosquitto,
`platestream hub` and two real-time `platestream run` nodes on loopback ports."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.benchlib import stop_processes  # noqa: E402

VIDEOS = ROOT.parent / "shared" / "evaldata" / "videos"
MOSQUITTO = "/usr/sbin/mosquitto"
TOKEN = "screenshot-token"
NODES = {"gate-north": "license_plate.mp4", "gate-south": "cars.mp4"}
EXPECTED = {"gate-north": {"LS15EBC"}, "gate-south": {"34A36837", "34A23126", "89C20339"}}
HEARTBEAT = 2


def _port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str):
    req = urllib.request.Request(url, headers={"Authorization": f"Token {TOKEN}"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


def _wait(cond, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if cond():
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"hub_screenshots: {what} not within {timeout:.0f} s")


def hub_shots(out: Path, chromium: str, timeout: float) -> list[str]:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen] = []
    shots: list[str] = []
    with tempfile.TemporaryDirectory(prefix="hub-shots-") as tmp_name:
        tmp = Path(tmp_name)
        broker, hub_port = _port(), _port()
        conf = [f"listener {broker} 127.0.0.1", "allow_anonymous true", "persistence false"]
        if os.geteuid() == 0:
            conf.append("user root")
        (tmp / "mosquitto.conf").write_text("\n".join(conf) + "\n")
        (tmp / "hub.yaml").write_text(
            f"mqtt: {{host: 127.0.0.1, port: {broker}, topic_prefix: fleet}}\n"
            f"store: {{path: events.sqlite}}\n"
            f"server: {{host: 127.0.0.1, port: {hub_port}, token: {TOKEN}}}\n"
            f"known_plates: {{staff: {{plates: [LS15EBC]}}}}\nheartbeat: {HEARTBEAT}\n")
        env = {**os.environ, "PLATESTREAM_MODELS": os.environ.get(
            "PLATESTREAM_MODELS", str(ROOT.parent / "shared" / "models"))}
        logs = []
        try:
            procs.append(subprocess.Popen([MOSQUITTO, "-c", str(tmp / "mosquitto.conf")],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            time.sleep(0.5)
            logs.append(open(tmp / "hub.log", "w"))  # noqa: SIM115 - closed below
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "stream.cli", "hub", str(tmp / "hub.yaml")], cwd=ROOT,
                env={**env, "PLATESTREAM_STATE": str(tmp / "hub-state")},
                stdout=logs[-1], stderr=subprocess.STDOUT))
            nodes = {}
            for name, video in NODES.items():
                d = tmp / name
                d.mkdir()
                (d / "node.yaml").write_text(
                    f"node_id: {name}\noutput_dir: {d}\nstore: {{enabled: false}}\n"
                    f"cameras: {{entrance: {{url: {VIDEOS / video}, realtime: true, loop: true,"
                    f" sample: 2, outputs: [hub]}}}}\n"
                    f"outputs: {{hub: {{type: mqtt, host: 127.0.0.1, port: {broker}, "
                    f"topic_prefix: fleet, discovery: false, heartbeat: {HEARTBEAT}}}}}\n")
                logs.append(open(d / "node.log", "w"))  # noqa: SIM115 - closed below
                nodes[name] = subprocess.Popen(
                    [sys.executable, "-m", "stream.cli", "run", str(d / "node.yaml"),
                     "--workers", "1"], cwd=d, stdout=logs[-1], stderr=subprocess.STDOUT,
                    env={**env, "PLATESTREAM_STATE": str(d / "state")})
                procs.append(nodes[name])
            base = f"http://127.0.0.1:{hub_port}"

            def plates_in() -> bool:
                for node, want in EXPECTED.items():
                    got = {e["plate"].upper() for e in
                           _get(f"{base}/api/v1/events?limit=500&node={node}")["events"]}
                    if not want <= got:
                        return False
                return True

            _wait(plates_in, timeout * 2, "the labelled plates in the hub")
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium)
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.set_default_timeout(timeout * 1000)
                page.goto(base + "/ui/nodes")
                page.fill("#token", TOKEN)
                page.click("button[type=submit]")
                page.wait_for_selector("#live-state.on")
                page.wait_for_selector("article[data-node='gate-south'] .pill-online")
                nodes["gate-south"].send_signal(signal.SIGKILL)  # one node dies
                page.wait_for_selector("article[data-node='gate-south'].offline")
                page.wait_for_timeout(1200)
                page.screenshot(path=str(out / "nodes.png"), full_page=True)
                shots.append("nodes.png")
                page.goto(base + "/ui/events")
                page.wait_for_timeout(300)
                page.screenshot(path=str(out / "hub_events.png"), full_page=True)
                shots.append("hub_events.png")
                browser.close()
        finally:
            stop_processes(reversed(procs), timeout=20)
            for f in logs:
                f.close()
    return shots
