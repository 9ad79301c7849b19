"""CSV output in Plate Recognizer Stream's plate-mode format (one row per plate of an event)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from stream.events import CSV_HEADER, csv_row
from stream.sinks._files import EventFileSink

__all__ = ["CsvSink"]


class CsvSink(EventFileSink):
    """``columns``: ``pr`` (Plate Recognizer's 15) or ``pr+event_id`` (plus the event's id,
    so the row of a correction, ``updated: true``, names the event it replaces)."""

    def __init__(self, template: str, base: Path | None = None, *,
                 columns: str = "pr") -> None:
        super().__init__(template, base)
        self.with_event_id = columns == "pr+event_id"

    def format(self, data: dict[str, Any], new_file: bool) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        extra = ("event_id",) if self.with_event_id else ()
        if new_file:
            w.writerow((*CSV_HEADER, *extra))
        for result in data["results"]:
            w.writerow([*csv_row(data, result), *(str(data.get(k, "")) for k in extra)])
        return buf.getvalue()
