"""``platestream run``: prints events and exits after files; with ``server:`` it serves the
snapshot API on the same engine plus /status/ and /metrics."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import aiohttp

from tests.stream.helpers import free_port, wait_for, write_config

ROOT = Path(__file__).resolve().parents[2]
CMD = [sys.executable, "-m", "stream.cli", "run", "--threads", "2"]


def _env() -> dict[str, str]:
    """Read per test: PLATESTREAM_STATE is each test's own (tests/conftest.py)."""
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def test_run_prints_events_and_exits_when_the_video_ends(tmp_path, evaldata):
    cfg = write_config(tmp_path, {
        "cameras": {"street": {"url": "videos/license_plate.mp4", "realtime": False,
                               "sample": 3, "outputs": ["csv"]}},
        "outputs": {"csv": {"type": "csv", "file": "{camera_id}.csv"}},
    })
    out = subprocess.run([*CMD, str(cfg), "--print-events", "--data-dir", str(evaldata)],
                         cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    events = [json.loads(line) for line in out.stdout.splitlines()]
    assert [e["results"][0]["plate"] for e in events] == ["ls15ebc"]
    assert (tmp_path / "out" / "street.csv").read_text().count("\n") == 2


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except OSError:
        return 0, ""


async def _read_plate(url: str, image: Path) -> dict:
    form = aiohttp.FormData()
    form.add_field("upload", image.read_bytes(), filename=image.name)
    async with aiohttp.ClientSession() as s, s.post(url, data=form) as r:
        assert 200 <= r.status < 300, await r.text()
        return await r.json()


def test_run_with_server_serves_status_metrics_and_snapshot(tmp_path, evaldata, endtoend):
    port = free_port()
    cfg = write_config(tmp_path, {
        "server": {"host": "127.0.0.1", "port": port, "data_dir": str(tmp_path / "srv")},
        "cameras": {"street": {"url": str(evaldata / "videos" / "license_plate.mp4"),
                               "loop": True, "sample": 3, "outputs": ["jsonl"]}},
        "outputs": {"jsonl": {"type": "jsonl", "file": "{camera_id}.jsonl"}},
    })
    proc = subprocess.Popen([*CMD, str(cfg)], cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        def decoding() -> bool:
            code, body = _get(f"{base}/status/")
            return code == 200 and json.loads(body)["cameras"]["street"]["frames_analysed"] > 0

        assert wait_for(decoding, 90), proc.poll()
        status = json.loads(_get(f"{base}/status/")[1])
        cam = status["cameras"]["street"]
        assert {"state", "url", "frames_decoded", "frames_analysed", "frames_dropped", "fps",
                "last_frame_time", "reconnects", "last_error"} <= set(cam)
        assert cam["state"] == "streaming" and cam["url"].endswith("license_plate.mp4")
        assert {"pending", "failed"} <= set(status["outputs"]["jsonl"])
        code, metrics = _get(f"{base}/metrics")
        assert code == 200
        assert 'platestream_camera_frames_decoded_total{camera="street"}' in metrics
        assert 'platestream_camera_frames_shed_total{camera="street"}' in metrics
        assert 'platestream_camera_frames_between_total{camera="street"}' in metrics
        assert 'platestream_camera_decode_lag_seconds{camera="street"}' in metrics
        assert 'platestream_camera_fast_decode{camera="street"}' in metrics
        assert cam["detect_interval"] == 0  # the interval in force
        assert 'platestream_camera_detect_interval{camera="street"} 0.0' in metrics
        assert 'platestream_output_pending{output="jsonl"}' in metrics
        sample = next(e for e in endtoend if e["region"] == "us")
        body = asyncio.run(_read_plate(f"{base}/v1/plate-reader/", evaldata / sample["image"]))
        assert body["results"]  # the snapshot API answers from the same engine
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait(10)
    assert rc == 0, proc.stderr.read()[-2000:] if proc.stderr else rc


def test_run_with_a_taken_port_says_so_in_one_line(tmp_path, evaldata):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        cfg = write_config(tmp_path, {
            "server": {"host": "127.0.0.1", "port": port, "data_dir": str(tmp_path / "srv")},
            "cameras": {"street": {"url": str(evaldata / "videos" / "license_plate.mp4"),
                                   "outputs": []}},
        })
        out = subprocess.run([*CMD, str(cfg)], cwd=ROOT, env=_env(), capture_output=True,
                             text=True, timeout=120)
    assert out.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in out.stderr
    assert "Traceback" not in out.stderr
    # bound before anything slow: the models were never loaded, nothing says "listening"
    assert "engine: models from" not in out.stderr and "start: server" not in out.stderr


def test_sigterm_on_a_live_run_flushes_the_open_track_and_drains(tmp_path, evaldata):
    """A vehicle still in view when SIGTERM comes is an event in the outputs before exit."""
    port = free_port()
    out_file = tmp_path / "events.jsonl"
    cfg = write_config(tmp_path, {
        "server": {"host": "127.0.0.1", "port": port, "data_dir": str(tmp_path / "srv")},
        "cameras": {"street": {
            "url": str(evaldata / "videos" / "license_plate.mp4"), "loop": True,
            "max_prediction_delay": 120, "outputs": ["lines"]}},
        "outputs": {"lines": {"type": "jsonl", "file": str(out_file)}},
    })
    proc = subprocess.Popen([*CMD, str(cfg), "--drain-timeout", "20"], cwd=ROOT, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def analysed() -> int:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/status/", timeout=5) as r:
                    return json.load(r)["cameras"]["street"]["frames_analysed"]
            except OSError:
                return 0
        assert wait_for(lambda: analysed() >= 5, 90), "the camera never got going"
        assert not out_file.exists() or not out_file.read_text().strip(), \
            "an event before SIGTERM: the track was not open"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err[-2000:]
    assert "Traceback" not in err
    plates = [e["results"][0]["plate"] for e in map(json.loads, out_file.read_text().splitlines())]
    assert plates == ["ls15ebc"], plates
