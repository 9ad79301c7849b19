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
        mode ``redaction`` (Plate Recognizer: "includes more candidates during the plate
            detection step ... miss fewer plates, more false positives") lowers the plate
            detection threshold to ``REDACTION_THRESHOLD_D`` unless threshold_d is given.
        detection_mode: ``vehicle`` also returns vehicles without a readable plate, in the
            vehicle-mode result shape (``plate``/``vehicle`` objects with ``props``).
        text_formats: plate text patterns that guide the read (Plate Recognizer's syntax:
            ``[0-9]`` digit, ``[a-z]`` letter, ``.`` any; see ``engine.text_formats``).
    """

    threshold_d: float = 0.4
    threshold_o: float = 0.0
    mode: Literal["normal", "fast", "redaction"] = "normal"
    region: Literal["normal", "strict"] = "normal"
    detection_rule: Literal["normal", "strict"] = "normal"
    detection_mode: Literal["plate", "vehicle"] = "plate"
    text_formats: tuple[str, ...] = ()

    @classmethod
    def parse(cls, value: ReadOptions | dict[str, Any] | str | None) -> ReadOptions:
        """Build from a dict or a JSON string (the ``config`` form field)."""
        if value is None or value == "":
            return cls()
        if isinstance(value, ReadOptions):
            return value
        if isinstance(value, (str, bytes)):
            value = _json_config(value)
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
        if out.get("mode") == "redaction" and "threshold_d" not in out:
            out["threshold_d"] = REDACTION_THRESHOLD_D
        return cls(**out)

    @classmethod
    def split(cls, value: dict[str, Any] | str | None) -> tuple[ReadOptions, tuple[str, ...]]:
        """Like ``parse``, but keys this engine does not know are returned instead of refused
        (the Snapshot API ignores them: Plate Recognizer's own clients send such keys)."""
        if isinstance(value, (str, bytes)) and value:
            value = _json_config(value)
        if not isinstance(value, dict):
            return cls.parse(value), ()
        known = {f.name for f in fields(cls)}
        ignored = tuple(str(k) for k in value if k not in known)
        return cls.parse({k: v for k, v in value.items() if k in known}), ignored


# The allowed words of each choice key, read from its Literal annotation.
_CHOICES = {
    name: get_args(hint)
    for name, hint in get_type_hints(ReadOptions).items()
    if get_origin(hint) is Literal
}


# Plate Recognizer's redaction mode "includes more candidates during the plate detection
# step": the detection threshold it uses unless the request sets threshold_d.
REDACTION_THRESHOLD_D = 0.2
MAX_TEXT_FORMATS = 32


def _check_value(key: str, raw: Any) -> Any:
    if key == "text_formats":
        from engine.text_formats import compile_text_format

        if isinstance(raw, str):
            raw = [raw]
        if not isinstance(raw, list) or len(raw) > MAX_TEXT_FORMATS:
            raise EngineConfigError(
                f"config.text_formats: expected a list of at most {MAX_TEXT_FORMATS} patterns, "
                f"got {raw!r:.60}")
        for pattern in raw:
            compile_text_format(pattern)  # raises EngineConfigError naming the pattern
        return tuple(raw)
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


def _json_config(text: str | bytes) -> Any:
    """The ``config`` field's JSON text, decoded; invalid JSON is one line naming where."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise EngineConfigError(f"config: not valid JSON ({exc.msg} at char {exc.pos})") from None
