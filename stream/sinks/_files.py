"""Append-only event files: handles opened on demand, one per path (rotates with the template).

Exactly once across kill -9: the spool redelivers an event whose write was not acked, so each
file has a small journal next to it (``.NAME.last``) naming the last spool item written, where
it starts and how long it is, fsync'ed before the append. A redelivered item that the
journal shows complete is not written again; one cut off mid-write is cut off the file and
written whole.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO, Any

from stream.delivery import Item
from stream.sinks.paths import render_path
from stream.wire import event_time

__all__ = ["AppendFiles", "EventFileSink"]


class AppendFiles:
    """Keeps the few most recently used handles open."""

    def __init__(self, max_open: int = 8) -> None:
        self.max_open = max_open
        self._open: dict[Path, IO[str]] = {}

    def get(self, path: Path) -> tuple[IO[str], bool]:
        """The handle and whether the file was empty (needs a header)."""
        f = self._open.pop(path, None)
        if f is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            f = open(path, "a", encoding="utf-8", newline="")  # noqa: SIM115
            while len(self._open) >= self.max_open:
                self._open.pop(next(iter(self._open))).close()
        self._open[path] = f
        return f, f.tell() == 0

    def drop(self, path: Path) -> None:
        f = self._open.pop(path, None)
        if f is not None:
            f.close()

    def close(self) -> None:
        for f in self._open.values():
            f.close()
        self._open.clear()


def _read_journal(path: Path) -> dict[str, int] | None:
    try:
        last = json.loads(path.read_text())
        return last if {"item", "offset", "length"} <= set(last) else None
    except (OSError, ValueError):
        return None


def _write_journal(path: Path, entry: dict[str, int]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(json.dumps(entry))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)  # atomic: the journal is the old one or the new one, never half


class EventFileSink:
    """``sink(item)`` appends the event in ``item.payload`` to the file its template names.

    Each write is flushed and fsync'ed before the call returns, so an event the spool marks
    delivered is on disk. Subclasses say how an event becomes text (``format``).
    """

    def __init__(self, template: str, base: Path | None = None) -> None:
        self.template = template
        self.base = base
        self._files = AppendFiles()

    def format(self, data: dict[str, Any], new_file: bool) -> str:
        raise NotImplementedError

    def __enter__(self) -> EventFileSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __call__(self, item: Item) -> None:
        data = item.payload
        when = event_time(data)
        path = render_path(self.template, data["camera_id"], when, self.base)
        journal = path.with_name(f".{path.name}.last")
        last = _read_journal(journal)
        if last is not None and last.get("item") == item.id and path.exists():
            size, end = path.stat().st_size, last["offset"] + last["length"]
            if size >= end:
                return  # written before a crash, not acked then: not twice
            if size > last["offset"]:
                self._files.drop(path)
                os.truncate(path, last["offset"])  # a torn write: cut it, write it whole
        f, empty = self._files.get(path)
        text = self.format(data, empty).encode("utf-8")
        offset = os.fstat(f.fileno()).st_size  # every write is flushed: the end of file
        _write_journal(journal, {"item": item.id, "offset": offset, "length": len(text)})
        f.write(text.decode("utf-8"))
        f.flush()
        os.fsync(f.fileno())

    def close(self) -> None:
        self._files.close()
