"""Output file names from templates: ``events/{camera_id}_{date}.csv`` or strftime codes."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

__all__ = ["render_path", "check_template"]


def render_path(template: str, camera_id: str, when: datetime, base: Path | None = None) -> Path:
    """``{camera_id}``, ``{date}`` (YYYY-MM-DD) and strftime codes (``%y-%m-%d``)."""
    name = template.format(camera_id=camera_id, camera=camera_id, date=f"{when:%Y-%m-%d}")
    path = Path(when.strftime(name) if "%" in name else name).expanduser()
    return path if base is None or path.is_absolute() else base / path


def check_template(template: str) -> str | None:
    """A one-line problem with the template, or None."""
    try:
        render_path(template, "cam", datetime(2025, 1, 1))
    except (KeyError, IndexError, ValueError) as exc:
        return f"bad template {template!r}: unknown field {exc} (use {{camera_id}}, {{date}})"
    return None
