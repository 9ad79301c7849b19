"""CSV output in Plate Recognizer Stream's plate-mode format (one row per plate of an event)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from stream import wire
from stream.sinks._files import EventFileSink

__all__ = ["CsvSink"]


class CsvSink(EventFileSink):
    """``columns``: ``pr`` (Plate Recognizer's 15) or ``pr+event_id`` (see ``stream.wire``)."""

    def __init__(self, template: str, base: Path | None = None, *,
                 columns: wire.CsvColumns = "pr") -> None:
        super().__init__(template, base)
        self.columns = columns

    def format(self, data: dict[str, Any], new_file: bool) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        if new_file:
            w.writerow(wire.csv_header(self.columns))
        w.writerows(wire.csv_rows(data, self.columns))
        return buf.getvalue()
