"""CSV output in Plate Recognizer Stream's plate-mode format (one row per event)."""

from __future__ import annotations

import csv
import io
import os
from datetime import datetime
from pathlib import Path

from stream.delivery import Item
from stream.events import CSV_HEADER, csv_row
from stream.sinks._files import AppendFiles
from stream.sinks.paths import render_path

__all__ = ["CsvSink"]


class CsvSink:
    """``send(item)`` appends the event in ``item.payload`` (the event data) to its file."""

    def __init__(self, template: str, base: Path | None = None) -> None:
        self.template = template
        self.base = base
        self._files = AppendFiles()

    def __enter__(self) -> CsvSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __call__(self, item: Item) -> None:
        data = item.payload
        when = datetime.fromisoformat(str(data["timestamp"]).replace("Z", "+00:00"))
        f, empty = self._files.get(render_path(self.template, data["camera_id"], when, self.base))
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        if empty:
            w.writerow(CSV_HEADER)
        for result in data["results"]:
            w.writerow(csv_row(data, result))
        f.write(buf.getvalue())
        f.flush()
        os.fsync(f.fileno())

    def close(self) -> None:
        self._files.close()
