"""Outputs fed from the delivery spool: each is a ``send(item)`` callable and a context manager.

The pipeline puts every event in the spool first; one DeliveryWorker per output calls the
output's ``send``; returning acknowledges the row, raising retries it later.
"""

from stream.sinks.csv_sink import CsvSink
from stream.sinks.images_sink import ImageSink
from stream.sinks.jsonl_sink import JsonlSink
from stream.sinks.paths import render_path

__all__ = ["CsvSink", "JsonlSink", "ImageSink", "render_path"]
