"""Small helpers shared by the stream tests."""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
from collections.abc import Callable, Iterable
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import yaml

from stream.config import CameraConfig, StreamConfig, load_config
from stream.sources import CameraReader, FrameSlot, SourceEnded
from stream.sources.frames import Frame
from stream.sources.headroom import CpuHeadroom


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


def write_video(path: Path, images: Iterable[np.ndarray], fps: int, rotation: int = 0,
                options: dict[str, str] | None = None) -> Path:
    """Encode BGR ``images`` (any iterable, read once) as H.264 at ``fps`` into ``path``;
    ``rotation``: a display matrix (degrees), as phones store sideways video; ``options``:
    libx264's, over ultrafast at crf 20 (which has no deblocking filter)."""
    it = iter(images)
    first = next(it)
    h, w = first.shape[:2]
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.options = {"preset": "ultrafast", "crf": "20", **(options or {})}
        if rotation:
            vs.set_display_rotation(rotation)
        for i, img in enumerate(itertools.chain([first], it)):
            f = av.VideoFrame.from_ndarray(img, format="bgr24").reformat(format="yuv420p")
            f.pts, f.time_base = i, Fraction(1, fps)
            for p in vs.encode(f):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
    return path


def read_to_end(cam: CameraConfig, keep: Callable[[Frame], Any],
                on_start: Callable[[CameraReader], None] | None = None,
                headroom: CpuHeadroom | None = None, block: bool = True
                ) -> tuple[CameraReader, list[Any]]:
    """Run ``cam``'s reader until its source ends; ``keep(frame)`` of every frame it put.

    The slot blocks, so every frame the reader puts arrives (``block=False``: latest wins, as
    a live camera's slot, and frames are dropped when ``keep`` is slower than the reader).
    ``on_start(reader)``: called once it runs; ``headroom``: the reader's (``fast_decode:
    auto``)."""
    slot, done, kept = FrameSlot(block=block), threading.Event(), []

    def drain() -> None:
        while not done.is_set():
            item = slot.get(0.5)
            if isinstance(item, SourceEnded):
                done.set()
            elif item is not None:
                kept.append(keep(item))

    reader = CameraReader(cam, slot, headroom=headroom)
    thread = threading.Thread(target=drain, name="test:drain")
    thread.start()
    reader.start()
    if on_start is not None:
        on_start(reader)
    assert done.wait(60), reader.stats
    reader.stop()
    thread.join(5)
    return reader, kept
