"""Read options: the Snapshot SDK's per-request ``config`` keys (``threshold_d``, ``mode``...),
validated with errors naming the key. Not the engine's settings (``engine.settings``)."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, fields
from typing import Any, Literal, get_args, get_origin, get_type_hints

from engine.errors import EngineConfigError

__all__ = ["ReadOptions"]


@dataclass(frozen=True, slots=True)
class ReadOptions:
    """Per-request options of one read (the ``config`` field of a Snapshot request, a camera's
    ``config:``).

    Attributes:
        threshold_d: minimum plate detection score (0..1).
        threshold_o: minimum plate read score (0..1).
        mode: ``fast`` skips the work not needed for the plate text (vehicle detection,
            candidates), ``normal`` does everything.
        region: ``strict`` keeps only plates whose region is one of the requested regions.
        detection_rule: ``strict`` drops plates that are not inside a detected vehicle.
    """

    threshold_d: float = 0.4
    threshold_o: float = 0.0
    mode: Literal["normal", "fast"] = "normal"
    region: Literal["normal", "strict"] = "normal"
    detection_rule: Literal["normal", "strict"] = "normal"

    @classmethod
    def parse(cls, value: ReadOptions | dict[str, Any] | str | None) -> ReadOptions:
        """Build from a dict or a JSON string (the ``config`` form field)."""
        if value is None or value == "":
            return cls()
        if isinstance(value, ReadOptions):
            return value
        if isinstance(value, (str, bytes)):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise EngineConfigError(
                    f"config: not valid JSON ({exc.msg} at char {exc.pos})"
                ) from None
        if not isinstance(value, dict):
            raise EngineConfigError(f"config: expected a JSON object, got {type(value).__name__}")
        known = {f.name: f for f in fields(cls)}
        out: dict[str, Any] = {}
        for key, raw in value.items():
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise EngineConfigError(
                    f"config.{key}: unknown key{hint}; known keys: {', '.join(known)}"
                )
            out[key] = _check_value(key, raw)
        return cls(**out)


# The allowed words of each choice key, read from its Literal annotation.
_CHOICES = {
    name: get_args(hint)
    for name, hint in get_type_hints(ReadOptions).items()
    if get_origin(hint) is Literal
}


def _check_value(key: str, raw: Any) -> Any:
    if key in _CHOICES:
        if raw not in _CHOICES[key]:
            raise EngineConfigError(
                f"config.{key}: expected one of {', '.join(_CHOICES[key])}, got {raw!r}"
            )
        return raw
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise EngineConfigError(f"config.{key}: expected a number 0..1, got {raw!r}")
    if not 0.0 <= float(raw) <= 1.0:
        raise EngineConfigError(f"config.{key}: must be within 0..1, got {raw}")
    return float(raw)
