"""Append-only event files: handles opened on demand, one per path (rotates with the template)."""

from __future__ import annotations

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

    def close(self) -> None:
        for f in self._open.values():
            f.close()
        self._open.clear()


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
        f, empty = self._files.get(render_path(self.template, data["camera_id"], when, self.base))
        f.write(self.format(data, empty))
        f.flush()
        os.fsync(f.fileno())

    def close(self) -> None:
        self._files.close()
