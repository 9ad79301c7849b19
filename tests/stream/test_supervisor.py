"""The lifecycle owner: one run with a server on a video file starts in order, exits by itself
at the end of the file, and stops in the one order (tested once, here)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.stream.helpers import free_port, read_jsonl, write_config

ROOT = Path(__file__).resolve().parents[2]

START = ["start: engine", "start: pipeline", "start: server"]
STOP = ["stop: sources", "stop: analysis", "stop: delivery", "stop: server", "stop: engine"]


def test_files_only_run_with_server_ends_and_stops_in_order(tmp_path, evaldata):
    cfg = write_config(tmp_path, {
        "server": {"host": "127.0.0.1", "port": free_port()},
        "cameras": {"street": {"url": str(evaldata / "videos" / "license_plate.mp4"),
                               "realtime": False, "sample": 3, "outputs": ["jsonl"]}},
        "outputs": {"jsonl": {"type": "jsonl", "file": "{camera_id}.jsonl"}},
    })
    p = subprocess.run([sys.executable, "-m", "stream.cli", "run", str(cfg), "--threads", "2"],
                       cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                       capture_output=True, text=True, timeout=180)
    assert p.returncode == 0, p.stderr[-3000:]
    phases = re.findall(r"(?:start|stop): [a-z]+", p.stderr)
    assert phases == [*START, *STOP], p.stderr[-3000:]
    ended = p.stderr.index("run: every video has ended")
    assert ended < p.stderr.index("stop: sources")
    # the event was delivered before delivery stopped
    assert [e["results"][0]["plate"] for e in read_jsonl(tmp_path / "out" / "street.jsonl")] \
        == ["ls15ebc"]
