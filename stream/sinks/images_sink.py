"""Event images (vehicle/plate crops or the frame) saved under a folder, at the event's
``filename`` (``{camera}_screenshots/%y-%m-%d/%H-%M-%S.%f.jpg``, as Stream names them)."""

from __future__ import annotations

import os
from pathlib import Path

from stream.delivery import Item

__all__ = ["ImageSink"]


class ImageSink:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def __enter__(self) -> ImageSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __call__(self, item: Item) -> None:
        if item.attachment is None:
            return
        name = item.attachment_name or f"{item.event_id}.jpg"
        path = self.folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".part")
        with open(tmp, "wb") as f:
            f.write(item.attachment)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def close(self) -> None:
        pass
