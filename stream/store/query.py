"""Event queries: the API's filters parsed (400 naming the parameter) and their paging cursor."""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from stream.known_plates import plate_key

__all__ = ["EventQuery", "QueryError", "Page", "plate_variants", "wildcard_parts"]

MAX_LIMIT = 1000
_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")


class QueryError(ValueError):
    """A filter that does not parse; ``param`` names it."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param
        self.message = message


@dataclass(frozen=True)
class EventQuery:
    plate: str | None = None
    camera: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    known: bool | str | None = None
    limit: int = 50
    cursor: str | None = None
    node: str | None = None  # the edge node (events received by a hub)

    @classmethod
    def from_params(cls, params: Mapping[str, str], *, max_limit: int = MAX_LIMIT,
                    default_limit: int = 50) -> EventQuery:
        unknown = set(params) - {"plate", "camera", "since", "until", "known", "limit",
                                 "cursor", "node"}
        if unknown:
            name = sorted(unknown)[0]
            raise QueryError(name, "unknown parameter (plate, camera, node, since, until, "
                                   "known, limit, cursor)")
        plate = params.get("plate") or None
        if plate is not None and not wildcard_parts(plate) and "*" not in plate:
            raise QueryError("plate", f"{plate!r} has no letters or digits")
        limit = default_limit
        if params.get("limit"):
            try:
                limit = int(params["limit"])
            except ValueError:
                raise QueryError("limit", f"expected an integer, got {params['limit']!r}") from None
            if not 1 <= limit <= max_limit:
                raise QueryError("limit", f"must be 1..{max_limit}, got {limit}")
        known: bool | str | None = None
        if params.get("known"):
            k = params["known"].strip()
            known = True if k.lower() in _TRUE else False if k.lower() in _FALSE else k
        since, until = _time(params, "since"), _time(params, "until")
        if since and until and since >= until:
            raise QueryError("until", "must be after since")
        cursor = params.get("cursor") or None
        if cursor is not None:
            decode_cursor(cursor)
        return cls(plate, params.get("camera") or None, since, until, known, limit, cursor,
                   params.get("node") or None)


def _time(params: Mapping[str, str], name: str) -> datetime | None:
    raw = (params.get(name) or "").strip()
    if not raw:
        return None
    try:
        v = float(raw)
    except ValueError:
        pass
    else:
        if not math.isfinite(v) or not 0 <= v < 1e11:
            raise QueryError(name, f"epoch seconds out of range: {raw!r}")
        return datetime.fromtimestamp(v, UTC)
    try:
        dt = datetime.fromisoformat(raw.replace(" ", "T") if len(raw) > 10 else raw)
    except ValueError:
        raise QueryError(name, f"expected ISO 8601 (2026-11-27T08:00:00Z) or epoch seconds, "
                               f"got {raw[:40]!r}") from None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def encode_cursor(ts: float, event_id: str) -> str:
    raw = json.dumps([ts, event_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        ts, eid = json.loads(raw)
        if not isinstance(eid, str) or not isinstance(ts, (int, float)):
            raise ValueError
        return float(ts), eid
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise QueryError("cursor", "not a cursor from a previous page's 'next'") from None


def wildcard_parts(plate: str) -> list[str]:
    """``"AB*12 3"`` -> ``["ab", "123"]`` (folded keys of the parts around ``*``)."""
    return [plate_key(p) for p in plate.split("*")] if "*" in plate else (
        [plate_key(plate)] if plate_key(plate) else [])


def plate_variants(key: str) -> set[str]:
    """The key and its one-character deletions (the fuzzy-search index entries)."""
    out = {key}
    if len(key) > 1:
        out.update(key[:i] + key[i + 1:] for i in range(len(key)))
    return out


@dataclass(frozen=True)
class Page:
    events: list[Any]
    next: str | None

    def to_json(self) -> dict[str, Any]:
        return {"events": [e.to_json() for e in self.events], "next": self.next}
