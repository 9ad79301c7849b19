"""engine/geometry.py: the one IoU, coverage and padded crop."""

import numpy as np
import pytest

from engine import Box
from engine.geometry import coverage, crop, intersection, iou


def test_crop_is_clamped_and_never_empty():
    img = np.zeros((100, 200, 3), np.uint8)
    assert crop(img, np.array([-10, -10, 50, 40])).shape == (40, 50, 3)
    assert crop(img, np.array([199.5, 99.5, 300, 300])).shape[:2] == (1, 1)
    assert crop(img, np.array([50, 50, 100, 70]), 0.1, 0.5).shape == (40, 60, 3)
    assert crop(img, Box(10, 20, 30, 25).xyxy).shape == (5, 20, 3)


def test_iou_intersection_and_coverage():
    boxes = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], np.float32)
    assert intersection((0, 0, 10, 10), boxes).tolist() == [100, 50, 0]
    assert iou((0, 0, 10, 10), boxes) == pytest.approx([1.0, 50 / 150, 0.0])
    assert iou((0, 0, 10, 10), boxes).dtype == np.float32  # detector boxes stay float32
    assert coverage((4, 0, 6, 10), boxes).tolist() == [1.0, 0.5, 0.0]
    assert iou((0, 0, 0, 0), [[0, 0, 0, 0]]).tolist() == [0.0]  # empty union: 0, not NaN
