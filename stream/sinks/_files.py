"""Append-only files opened on demand, one handle per path (rotates with the template)."""

from __future__ import annotations

from pathlib import Path
from typing import IO

__all__ = ["AppendFiles"]


class AppendFiles:
    """Keeps the few most recently used handles open; each write is flushed and fsync'ed
    before ``send`` returns, so an acknowledged row is on disk."""

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
