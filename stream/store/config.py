"""The ``store:`` section of the stream config."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["StoreConfig"]


@dataclass(frozen=True)
class StoreConfig:
    enabled: bool = field(default=True, metadata={"help": "keep every event (off: false)"})
    url: str | None = field(default=None, metadata={
        "help": "postgresql://user:password@host/db (default: SQLite in the state directory)"})
    path: str = field(default="events.sqlite", metadata={"help": "SQLite file"})
    images_dir: str = field(default="event_images", metadata={"help": "event crops (JPEG)"})
    keep_days: float = field(default=30.0, metadata={"gt": 0, "help": "delete older events"})
    max_image_mb: float = field(default=2000.0, metadata={
        "gt": 0, "help": "drop the oldest events' images beyond this total"})

    def __post_init__(self) -> None:
        if self.url is not None and not self.url.startswith(("postgresql://", "postgres://")):
            raise ValueError(f"store.url: expected a postgresql:// URL, got {_safe(self.url)!r}")

    @property
    def safe_url(self) -> str | None:
        return _safe(self.url) if self.url else None


def _safe(url: str) -> str:
    """The URL without its password (it never reaches a log or /status/)."""
    import re

    return re.sub(r"^([a-z]+://[^:/@]*):[^@]*@", r"\1:***@", url)
