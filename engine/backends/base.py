"""The backend protocol every inference runtime implements (ONNX Runtime now, TensorRT later)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["TensorSpec", "Backend"]


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """Shape of one input; ``None`` marks a dynamic dimension (a free batch, say)."""

    shape: tuple[int | None, ...]
    dtype: np.dtype

    @property
    def dynamic_batch(self) -> bool:
        return bool(self.shape) and self.shape[0] is None


@runtime_checkable
class Backend(Protocol):
    name: str

    def inputs(self) -> dict[str, TensorSpec]:
        """Input name -> spec."""
        ...

    def infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one call; returns output name -> array (owned by the caller)."""
        ...

    def close(self) -> None: ...
