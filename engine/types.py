"""Array aliases and the detection batch container used on the hot path."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

import numpy as np
import numpy.typing as npt

__all__ = ["BGRImage", "Detections"]

BGRImage: TypeAlias = npt.NDArray[np.uint8]
"""(h, w, 3) uint8 image in OpenCV's BGR channel order."""


def _check_shape(name: str, arr: np.ndarray, expected: tuple[int, ...]) -> None:
    if arr.shape != expected:
        raise ValueError(f"{name}: expected shape {expected}, got {arr.shape}")


@dataclass(frozen=True, eq=False, slots=True)
class Detections:
    """A batch of boxes as parallel arrays.

    Attributes:
        xyxy: (n, 4) float32 ``[x1, y1, x2, y2]`` in frame pixels.
        score: (n,) float32 confidence 0..1.
        class_id: (n,) int32 detector class index.
    """

    xyxy: np.ndarray
    score: np.ndarray
    class_id: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.xyxy)
        _check_shape("xyxy", self.xyxy, (n, 4))
        _check_shape("score", self.score, (n,))
        _check_shape("class_id", self.class_id, (n,))

    @classmethod
    def empty(cls) -> Detections:
        return cls(
            np.empty((0, 4), np.float32), np.empty((0,), np.float32), np.empty((0,), np.int32)
        )

    def __len__(self) -> int:
        return len(self.score)

    def __getitem__(self, index: np.ndarray | slice) -> Detections:
        return Detections(self.xyxy[index], self.score[index], self.class_id[index])
