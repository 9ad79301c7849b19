"""CSV output in Plate Recognizer Stream's plate-mode format (one row per plate of an event)."""

from __future__ import annotations

import csv
import io
from typing import Any

from stream.events import CSV_HEADER, csv_row
from stream.sinks._files import EventFileSink

__all__ = ["CsvSink"]


class CsvSink(EventFileSink):
    def format(self, data: dict[str, Any], new_file: bool) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        if new_file:
            w.writerow(CSV_HEADER)
        for result in data["results"]:
            w.writerow(csv_row(data, result))
        return buf.getvalue()
