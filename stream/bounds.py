"""The numeric bounds that config dataclass fields declare in their metadata (ge, gt, le, lt),
checked the same way by the YAML loader and by ServerSettings itself."""

from __future__ import annotations

import operator
from collections.abc import Mapping
from typing import Any

__all__ = ["bound_violation"]

_OPS = {
    "ge": (operator.ge, ">="), "gt": (operator.gt, ">"),
    "le": (operator.le, "<="), "lt": (operator.lt, "<"),
}


def bound_violation(value: Any, meta: Mapping[str, Any]) -> str | None:
    """``"must be >= 1, got 0"`` for the first bound ``value`` breaks, else None."""
    for key, (op, symbol) in _OPS.items():
        if key in meta and not op(value, meta[key]):
            return f"must be {symbol} {meta[key]}, got {value}"
    return None
