"""A real GStreamer RTSP server: events arrive, the camera survives the server being killed."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from stream.pipeline import Pipeline
from tests.stream.helpers import make_config, read_jsonl, wait_for

PIPELINE_THREADS = ("camera:", "analyze:", "deliver:")


def _ours() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(PIPELINE_THREADS)]


def _events(cfg) -> list[dict]:
    return read_jsonl(Path(cfg.output_dir) / "gate.jsonl")


def _run_reconnect_cycles(tmp_path, rtsp_server, engine_worker, cycles: int) -> None:
    cfg = make_config(tmp_path, {
        "cameras": {"gate": {
            "url": rtsp_server.url, "sample": 3, "memory_decay": 0, "timeout": 3,
            "reconnect_max": 2, "outputs": ["jsonl"],
        }},
        "outputs": {"jsonl": {"type": "jsonl", "file": "{camera_id}.jsonl"}},
    })
    before = threading.active_count()
    assert not _ours()
    with Pipeline(cfg, engine_worker) as p:
        assert wait_for(lambda: _events(cfg), 60), p.status()
        cam = p.status()["cameras"]["gate"]
        assert "secret" not in cam["url"] and cam["url"].startswith("rtsp://127.0.0.1:")
        assert all("secret" not in e["results"][0]["source_url"] for e in _events(cfg))
        for _ in range(cycles):
            reconnects = p.status()["cameras"]["gate"]["reconnects"]
            rtsp_server.kill()
            assert wait_for(lambda r=reconnects: p.status()["cameras"]["gate"]["reconnects"] > r,
                            30), p.status()
            assert p.status()["cameras"]["gate"]["state"] in ("connecting", "reconnecting")
            n = len(_events(cfg))
            rtsp_server.start()
            assert wait_for(lambda n=n: len(_events(cfg)) > n, 60), p.status()
            assert wait_for(lambda: p.status()["cameras"]["gate"]["state"] == "streaming", 30)
        assert sorted(_ours()) == ["analyze:gate", "camera:gate", "deliver:jsonl",
                                   "deliver:store"]
        assert p.wait_delivered(10)
    # Stopped: no pipeline thread is left behind.
    assert wait_for(lambda: not _ours(), 10), _ours()
    assert threading.active_count() <= before
    plates = {e["results"][0]["plate"] for e in _events(cfg)}
    assert plates == {"ls15ebc"}, plates


def test_rtsp_events_survive_server_restart(tmp_path, rtsp_server, engine_worker):
    _run_reconnect_cycles(tmp_path, rtsp_server, engine_worker, cycles=1)


@pytest.mark.slow
def test_rtsp_many_restarts_leak_no_threads(tmp_path, rtsp_server, engine_worker):
    _run_reconnect_cycles(tmp_path, rtsp_server, engine_worker, cycles=8)


def test_rtsp_stalled_stream_is_a_disconnect(tmp_path, rtsp_server, engine_worker):
    """A camera that stops sending without closing (SIGSTOP) is detected by the read timeout."""
    cfg = make_config(tmp_path, {
        "cameras": {"gate": {"url": rtsp_server.url, "sample": 3, "memory_decay": 0,
                             "timeout": 2, "reconnect_max": 1, "outputs": ["jsonl"]}},
        "outputs": {"jsonl": {"type": "jsonl", "file": "{camera_id}.jsonl"}},
    })
    with Pipeline(cfg, engine_worker) as p:
        assert wait_for(lambda: p.status()["cameras"]["gate"]["frames_decoded"] > 10, 30)
        rtsp_server.pause()
        try:
            assert wait_for(lambda: p.status()["cameras"]["gate"]["reconnects"] >= 1, 30), \
                p.status()
        finally:
            rtsp_server.resume()
        n = p.status()["cameras"]["gate"]["frames_decoded"]
        assert wait_for(lambda: p.status()["cameras"]["gate"]["frames_decoded"] > n + 10, 60)
        assert wait_for(lambda: _events(cfg), 60), p.status()
    assert wait_for(lambda: not _ours(), 10), _ours()
