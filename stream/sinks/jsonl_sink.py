"""JSON Lines output: one event (the Snapshot result + Stream fields) per line."""

from __future__ import annotations

import json
from typing import Any

from stream.sinks._files import EventFileSink

__all__ = ["JsonlSink"]


class JsonlSink(EventFileSink):
    def format(self, data: dict[str, Any], new_file: bool) -> str:
        return json.dumps(data, separators=(",", ":")) + "\n"
