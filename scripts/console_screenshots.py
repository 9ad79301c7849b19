#!/usr/bin/env python3
"""Screenshots of every web console page from a real run, for the README (docs/console/*.png).

Runs `platestream run` on the two demo videos (realtime) with a server and a token on a free
loopback port, adds a known plate, waits for the four labelled plates, then drives Debian's
chromium through Playwright: login, live overview, events, an event's detail, known plates,
health, and a form error. Writes the PNGs and docs/console/screenshots.json (what was shot).

    .venv/bin/python scripts/console_screenshots.py [--out docs/console] [--chromium PATH]

With ``--hub``: the hub's console instead (docs/deploy.md): Debian's mosquitto on a free
loopback port, `platestream hub` and two real-time `platestream run` nodes (one demo video
each); once the nodes' plates are in the hub, one node is killed and the Nodes page (one
online, one offline) and the events page (with each event's node) are shot.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VIDEOS = ROOT.parent / "shared" / "evaldata" / "videos"
TOKEN = "screenshot-token"
EXPECTED = ("34A36837", "34A23126", "89C20339", "LS15EBC")

CONFIG = """\
engine: {{backend: auto, workers: 2}}
output_dir: {out}
server: {{host: 127.0.0.1, port: {port}, token: {token}}}
defaults: {{realtime: true, loop: true, outputs: [jsonl, hook]}}  # loop: a run of files ends at EOF
known_plates:
  staff: {{plates: [LS15EBC]}}
cameras:
  toll-booth:
    url: {videos}/cars.mp4
    zones: [[0, 200], [1280, 200], [1280, 720], [0, 720]]
    # the truck is in view from 8.5 s but readable only from 13.8 s: report its best read at
    # the end of the pass, not a partial one 6 s after it appeared
    max_prediction_delay: 12
  street: {{url: {videos}/license_plate.mp4, sample: 2}}
outputs:
  jsonl: {{type: jsonl, file: "events/{{camera_id}}.jsonl"}}
  hook: {{type: webhook, url: "http://127.0.0.1:9/nobody-listens", max_attempts: 2,
          backoff_max: 1}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"console_screenshots: {url} did not answer within {timeout:.0f} s")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "console"))
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--timeout", type=float, default=90.0, help="bound for the whole run (s)")
    ap.add_argument("--hub", action="store_true", help="the hub's console: nodes and events")
    args = ap.parse_args()
    if args.hub:
        from hub_screenshots import hub_shots  # scripts/ is on sys.path when run as a script

        return _record(Path(args.out), hub_shots(Path(args.out), args.chromium, args.timeout))
    from playwright.sync_api import sync_playwright

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="console-shots-") as tmp:
        cfg = Path(tmp) / "console.yaml"
        cfg.write_text(CONFIG.format(out=tmp, port=port, token=TOKEN, videos=VIDEOS))
        env = {**os.environ, "PLATESTREAM_STATE": str(Path(tmp) / "state"),
               "PLATESTREAM_MODELS": os.environ.get(
                   "PLATESTREAM_MODELS", str(ROOT.parent / "shared" / "models"))}
        proc = subprocess.Popen([sys.executable, "-m", "stream.cli", "run", str(cfg)],
                                cwd=tmp, env=env, stdout=subprocess.DEVNULL,
                                stderr=open(Path(tmp) / "run.log", "w"))
        shots: list[str] = []
        try:
            wait_http(base + "/", 30)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=args.chromium)
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.set_default_timeout(args.timeout * 1000)

                def shot(name: str) -> None:
                    page.wait_for_timeout(300)
                    page.screenshot(path=str(out / f"{name}.png"), full_page=True)
                    shots.append(f"{name}.png")

                page.goto(base + "/ui/")
                page.fill("#token", "not-the-token")
                page.click("button[type=submit]")
                page.wait_for_selector(".login .error")
                page.fill("#token", TOKEN)
                shot("login")
                page.click("button[type=submit]")
                page.wait_for_selector("#live-state.on")
                # the overview after the four plates have come in, live
                for plate in EXPECTED:
                    page.wait_for_selector(f"#feed .plate:text-is('{plate}')")
                page.wait_for_timeout(1500)
                shot("overview")
                page.goto(base + "/ui/events")
                shot("events")
                page.fill("#search", "89C2O339")
                page.wait_for_selector("#suggest:not([hidden]) a")
                shot("search")
                page.click("#suggest a")
                page.click("tbody tr a")
                page.wait_for_selector("#vehicle-image")
                page.wait_for_function("document.getElementById('vehicle-image').complete")
                shot("event")
                page.goto(base + "/ui/known")
                page.fill("#known-form [name=list]", "staff")
                page.fill("#known-form [name=plate]", "34A23126")
                page.fill("#known-form [name=name]", "Red Yaris")
                page.click("#known-submit")
                page.wait_for_selector("tr[data-plate='34a23126']")
                page.fill("#known-form [name=plate]", "!!")
                page.click("#known-submit")
                page.wait_for_selector("#known-error:not([hidden])")
                shot("known")
                page.goto(base + "/ui/health")
                page.wait_for_selector("#live-state.on")
                page.wait_for_timeout(1200)
                shot("health")
                browser.close()
        except Exception:
            lines = (Path(tmp) / "run.log").read_text().splitlines()
            sys.stderr.write("\n".join(ln for ln in lines if "aiohttp.access" not in ln)[-4000:])
            raise
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
    return _record(out, shots)


def _record(out: Path, shots: list[str]) -> int:
    """docs/console/screenshots.json: every screenshot there (a --hub run adds its own)."""
    path = out / "screenshots.json"
    try:
        old = json.loads(path.read_text())["screenshots"]
    except (OSError, ValueError, KeyError):
        old = []
    merged = [*old, *(s for s in shots if s not in old)]
    path.write_text(json.dumps({"screenshots": merged}, indent=2) + "\n")
    print(json.dumps({"out": str(out), "screenshots": shots}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
