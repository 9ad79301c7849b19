"""JSON Lines output: one event (the Snapshot result + Stream fields) per line."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

from stream.delivery import Item
from stream.sinks._files import AppendFiles
from stream.sinks.paths import render_path

__all__ = ["JsonlSink"]


class JsonlSink:
    def __init__(self, template: str, base: Path | None = None) -> None:
        self.template = template
        self.base = base
        self._files = AppendFiles()

    def __enter__(self) -> JsonlSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __call__(self, item: Item) -> None:
        data = item.payload
        when = datetime.fromisoformat(str(data["timestamp"]).replace("Z", "+00:00"))
        f, _ = self._files.get(render_path(self.template, data["camera_id"], when, self.base))
        f.write(json.dumps(data, separators=(",", ":")) + "\n")
        f.flush()
        os.fsync(f.fileno())

    def close(self) -> None:
        self._files.close()
