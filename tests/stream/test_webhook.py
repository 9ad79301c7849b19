"""Webhook delivery through the spool: receiver down then up, and kill -9 of the pipeline."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from stream.pipeline import Pipeline
from tests.stream.helpers import make_config, read_jsonl, wait_for, write_config

ROOT = Path(__file__).resolve().parents[2]


def test_receiver_down_then_up_gets_every_event(tmp_path, evaldata, receiver, engine_worker):
    cfg = make_config(tmp_path, {
        "defaults": {"realtime": False, "sample": 2, "outputs": ["hook", "jsonl"]},
        "cameras": {
            "toll": {"url": str(evaldata / "videos" / "cars.mp4")},
            "street": {"url": str(evaldata / "videos" / "license_plate.mp4")},
        },
        "outputs": {
            "hook": {"type": "webhook", "url": receiver.url, "image": "vehicle",
                     "header": "Authorization: Token t0k3n", "backoff_max": 1},
            "jsonl": {"type": "jsonl", "file": "all.jsonl"},
        },
    })
    with Pipeline(cfg, engine_worker) as p:
        assert wait_for(p.done, 120), p.status()
        hook = p.status()["outputs"]["hook"]
        # Receiver down: every event waits in the spool, attempts fail and are retried.
        assert wait_for(lambda: p.status()["outputs"]["hook"]["failed_attempts"] >= 2, 20)
        events = read_jsonl(Path(cfg.output_dir) / "all.jsonl")
        assert len(events) >= 4
        assert p.status()["outputs"]["hook"]["pending"] == len(events), hook
        receiver.up()
        assert p.wait_delivered(30), p.status()
        assert p.status()["outputs"]["hook"]["failed"] == 0
    got = {b["data"]["event_id"] for b in receiver.received}
    assert got == {e["event_id"] for e in events}
    for body, upload, headers in zip(receiver.received, receiver.uploads, receiver.headers,
                                     strict=True):
        assert body["hook"] == {"target": receiver.url, "id": body["data"]["camera_id"],
                                "event": "recognition", "filename": body["data"]["filename"]}
        assert {"camera_id", "timestamp", "timestamp_local", "results"} <= set(body["data"])
        r = body["data"]["results"][0]
        assert {"plate", "score", "box", "direction", "source_url", "position_sec"} <= set(r)
        assert upload is not None and upload[:2] == b"\xff\xd8"  # a JPEG vehicle image
        assert headers["Authorization"] == "Token t0k3n"


def _pending_ids(spool: Path, output: str) -> set[str]:
    if not spool.exists():
        return set()
    db = sqlite3.connect(f"file:{spool}?mode=ro", uri=True, timeout=5)
    try:
        rows = db.execute("SELECT event_id FROM outbox WHERE output = ? AND state = 'pending'",
                          (output,)).fetchall()
    except sqlite3.OperationalError:  # the table is not created yet
        return set()
    finally:
        db.close()
    return {r[0] for r in rows}


def test_kill_9_then_restart_resends_from_the_spool(tmp_path, evaldata, receiver):
    cfg = {
        "output_dir": str(tmp_path / "out"),
        "spool": "platestream-spool.sqlite",  # named: the two config files share it
        "cameras": {"toll": {"url": str(evaldata / "videos" / "cars.mp4"), "realtime": False,
                             "sample": 2, "outputs": ["hook"]}},
        "outputs": {"hook": {"type": "webhook", "url": receiver.url, "image": "none",
                             "backoff_max": 1}},
    }
    spool = tmp_path / "out" / "platestream-spool.sqlite"
    cmd = [sys.executable, "-m", "stream.cli", "run", "--threads", "2"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([*cmd, str(write_config(tmp_path, cfg, "run1.yaml"))], cwd=ROOT,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: len(_pending_ids(spool, "hook")) >= 2, 120)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    pending = _pending_ids(spool, "hook")
    assert len(pending) >= 2 and not receiver.received
    receiver.up()
    # Restart with the camera switched off: whatever arrives now comes from the spool.
    cfg["cameras"]["toll"]["active"] = False
    out = subprocess.run([*cmd, str(write_config(tmp_path, cfg, "run2.yaml"))], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    got = [b["data"]["event_id"] for b in receiver.received]
    assert pending <= set(got), (pending, got)
    assert not _pending_ids(spool, "hook")
    for body in receiver.received:
        assert body["hook"]["event"] == "recognition" and body["data"]["results"]
