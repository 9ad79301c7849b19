"""Small helpers shared by the stream tests."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

import yaml

from stream.config import StreamConfig, load_config


def write_config(tmp_path: Path, cfg: dict[str, Any], name: str = "config.yaml") -> Path:
    cfg = {"output_dir": str(tmp_path / "out"), **cfg}
    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def make_config(tmp_path: Path, cfg: dict[str, Any]) -> StreamConfig:
    return load_config(write_config(tmp_path, cfg))


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def wait_for(cond, timeout: float, step: float = 0.2) -> bool:
    """Poll ``cond()`` until true or ``timeout`` seconds pass (bounded loop)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return bool(cond())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
