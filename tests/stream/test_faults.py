"""Faults the operator must see at once (issue 13): a frozen camera, credentials in errors,
an unreadable video file, a mistyped URL scheme."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from stream.config import ConfigError
from stream.pipeline import Pipeline
from tests.stream.helpers import free_port, make_config, read_jsonl, wait_for, write_config
from tests.stream.test_run_cli import CMD, ROOT, _env, _get


def test_frozen_camera_is_stalled_within_timeout_and_fps_decays(tmp_path, rtsp_server,
                                                                 engine_worker):
    """Connection open, no frames (SIGSTOP on the server): ``stalled`` within ``timeout``
    (+-1 s) of the last frame, fps falls to 0 instead of showing the last rate."""
    timeout = 3.0
    cfg = make_config(tmp_path, {
        "cameras": {"gate": {"url": rtsp_server.url, "sample": 3, "timeout": timeout,
                             "reconnect_max": 1}},
    })
    with Pipeline(cfg, engine_worker) as p:
        def cam() -> dict:
            return p.status()["cameras"]["gate"]

        def one_stall() -> str | None:
            """Freeze the server once; None when every expectation held, else what failed."""
            if not wait_for(lambda: cam()["state"] == "streaming" and cam()["fps"] > 5, 60):
                return f"not streaming before the freeze: {cam()}"
            rtsp_server.pause()
            try:
                seen, c = None, cam()
                deadline = time.monotonic() + 3 * timeout
                while time.monotonic() < deadline:
                    c = cam()
                    if c["state"] == "stalled":
                        seen = datetime.now(UTC)
                        break
                    time.sleep(0.05)
                if seen is None:
                    return f"never stalled: {c}"
                silent = (seen - datetime.fromisoformat(c["last_frame_time"])).total_seconds()
                if not timeout - 0.2 <= silent <= timeout + 1.0:
                    return f"stalled after {silent:.2f} s: {c}"
                if "no frame for" not in c["last_error"]:
                    return f"no stall error: {c}"
                # fps decays: 0 once the 5 s window holds no frame (stalled or reconnecting).
                if not wait_for(lambda: cam()["fps"] == 0.0, 8):
                    return f"fps did not decay: {cam()}"
                if cam()["state"] not in ("stalled", "reconnecting", "connecting"):
                    return f"state after the stall: {cam()}"
                return None
            finally:
                rtsp_server.resume()

        assert wait_for(lambda: cam()["frames_decoded"] > 20, 30), cam()
        # a shared 2-core machine can delay one status poll past the window: two tries
        failures = []
        for _ in range(2):
            why = one_stall()
            if why is None:
                break
            failures.append(why)
        else:
            raise AssertionError("; ".join(failures))
        assert wait_for(lambda: cam()["state"] == "streaming" and cam()["fps"] > 0, 60), cam()


def _bad_videos(tmp_path: Path, evaldata: Path) -> dict[str, Path]:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video\n" * 500)
    truncated = tmp_path / "truncated.mp4"
    data = (evaldata / "videos" / "license_plate.mp4").read_bytes()
    truncated.write_bytes(data[: len(data) // 3])
    return {"junk": junk, "truncated": truncated}


def test_unreadable_video_files_fail_the_camera_and_run_exits(tmp_path, evaldata,
                                                               engine_worker):
    bad = _bad_videos(tmp_path, evaldata)
    cams = {name: {"url": str(p), "realtime": False} for name, p in bad.items()}
    cams["good"] = {"url": str(evaldata / "videos" / "license_plate.mp4"), "realtime": False,
                    "sample": 4}
    cfg_path = write_config(tmp_path, {"cameras": cams})
    # The pipeline: each bad file is a failed camera with its reason; nothing retries.
    with Pipeline(make_config(tmp_path, {"cameras": cams}), engine_worker) as p:
        assert wait_for(p.done, 120), p.status()
        st = p.status()["cameras"]
        assert sorted(p.failed()) == ["junk", "truncated"]
        for name in bad:
            assert st[name]["state"] == "failed" and st[name]["reconnects"] == 0
            assert st[name]["last_error"], st[name]
        assert st["good"]["state"] == "ended"
    # `check` probes the files (open + first frame) and names the problem.
    out = subprocess.run([*CMD[:3], "check", str(cfg_path)], cwd=ROOT, env=_env(),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1, out
    for name, path in bad.items():
        assert f"cameras.{name}.url: cannot read video file {path}" in out.stderr
    assert "cameras.good" not in out.stderr and "Traceback" not in out.stderr
    # `run` ends on its own, non-zero, one log line per failed file, no traceback.
    out = subprocess.run([*CMD, str(cfg_path)], cwd=ROOT, env=_env(), capture_output=True,
                         text=True, timeout=180)
    assert out.returncode == 1, out.stderr[-2000:]
    for name in bad:
        assert out.stderr.count(f"camera {name}: video file failed") == 1, out.stderr[-3000:]
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize(("url", "message"), [
    ("rstp://user:pw@cam.local/s", "unknown URL scheme 'rstp' (did you mean 'rtsp'?)"),
    ("htps://cam.local/s", "unknown URL scheme 'htps' (did you mean 'https'?)"),
    ("zzz://cam.local/s", "unknown URL scheme 'zzz'; expected one of rtsp, rtsps"),
])
def test_unknown_url_scheme_is_named_with_a_hint(tmp_path, url, message):
    with pytest.raises(ConfigError, match=r"config.yaml:\d+: cameras.gate.url: ") as e:
        make_config(tmp_path, {"cameras": {"gate": {"url": url}}})
    assert message in str(e.value) and "pw" not in str(e.value)


def test_credentials_never_appear_in_any_output(tmp_path, rtsp_server, receiver):
    """Secrets in a camera URL (userinfo, ?token=), in a dead camera's URL (its errors quote
    it) and in a webhook URL: grep stdout, stderr, /status/, /metrics, the JSONL and CSV
    files and what the webhook receiver got."""
    dead = free_port()
    port = free_port()
    receiver.up()
    secrets = ["secret", "hunter2", "TOKSECRET", "PWSECRET", "HOOKSECRET"]
    cfg = write_config(tmp_path, {
        "server": {"host": "127.0.0.1", "port": port, "data_dir": str(tmp_path / "srv")},
        "defaults": {"sample": 3, "memory_decay": 0, "timeout": 3, "reconnect_max": 1,
                     "outputs": ["jsonl", "csv", "hook"]},
        "cameras": {
            "gate": {"url": rtsp_server.url + "?token=TOKSECRET"},
            "dead": {"url": f"rtsp://admin:hunter2@127.0.0.1:{dead}/x?password=PWSECRET"},
        },
        "outputs": {
            "jsonl": {"type": "jsonl", "file": "{camera_id}.jsonl"},
            "csv": {"type": "csv", "file": "{camera_id}.csv"},
            "hook": {"type": "webhook", "url": receiver.url + "?token=HOOKSECRET",
                     "image": "none"},
        },
    })
    proc = subprocess.Popen([*CMD, str(cfg), "--print-events", "json"], cwd=ROOT, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        def ready() -> bool:
            code, body = _get(f"{base}/status/")
            if code != 200:
                return False
            cams = json.loads(body)["cameras"]
            return cams["dead"]["reconnects"] >= 1 and cams["dead"]["last_error"] and bool(
                receiver.received)

        assert wait_for(ready, 120), proc.poll()
        status = _get(f"{base}/status/")[1]
        metrics = _get(f"{base}/metrics")[1]
        assert "Connection refused" in status  # the error is shown, without its secrets
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            stdout, stderr = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
    out = tmp_path / "out"
    files = {p.name: p.read_text() for p in out.glob("*.*sv")} | {
        p.name: p.read_text() for p in out.glob("*.jsonl")}
    assert read_jsonl(out / "gate.jsonl"), (stderr[-2000:], list(files))
    assert "gate.csv" in files and "127.0.0.1" in files["gate.csv"]  # source_url column
    outputs = {"stdout": stdout, "stderr": stderr, "status": status, "metrics": metrics,
               "webhook": json.dumps(receiver.received), **files}
    assert "Connection refused" in stderr
    for where, text in outputs.items():
        for s in secrets:
            assert s not in text, (where, s)
