"""INT8 calibration inputs: real images, preprocessed by the engine's own functions."""

from __future__ import annotations

import itertools
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.plates import process as plates
from engine.vehicles import process as vehicles
from trt_builder.calibrator import (
    calibration_batches,
    images_digest,
    list_images,
    preprocessed_inputs,
)


@pytest.fixture(scope="module")
def images(evaldata: Path) -> list[Path]:
    return list_images(evaldata / "images" / "eu", 4)


def test_list_images_sorted_limited_recursive(evaldata: Path, tmp_path: Path) -> None:
    got = list_images(evaldata / "images", 7)
    assert len(got) == 7 and got == sorted(got)
    (tmp_path / "a.txt").write_text("x")
    assert list_images(tmp_path) == []


def test_digest_tracks_the_set(images: list[Path]) -> None:
    assert images_digest(images) == images_digest(list(images))
    assert images_digest(images) != images_digest(images[:-1])


@pytest.mark.parametrize("role, module", [("plate_detector", plates),
                                          ("vehicle_detector", vehicles)])
def test_detector_inputs_are_the_engine_preprocessing(role, module, images, models_dir):
    got = list(preprocessed_inputs(role, images, models_dir))
    assert len(got) == len(images)
    for path, x in zip(images, got, strict=True):
        want, _ = module.preprocess(cv2.imread(str(path)))
        assert x.shape == (1, 3, 416, 416) and x.dtype == np.float32
        assert np.array_equal(x, want)


def test_ocr_inputs_are_real_plate_crops(images, models_dir) -> None:
    got = list(itertools.islice(preprocessed_inputs("plate_ocr", images, models_dir), 4))
    assert got, "the plate detector found no plate in the EU images"
    for x in got:
        assert x.shape == (1, 64, 128, 3) and x.dtype == np.uint8
        assert x.std() > 10  # a real crop, not a flat pad


def test_unreadable_file_is_skipped(tmp_path: Path, images, models_dir) -> None:
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    got = list(preprocessed_inputs("vehicle_detector", [bad, images[0]], models_dir))
    assert len(got) == 1


def test_batches_have_one_fixed_shape() -> None:
    singles = (np.full((1, 2, 2), i, np.float32) for i in range(7))
    batches = list(calibration_batches(singles, 3))
    assert [b.shape for b in batches] == [(3, 2, 2), (3, 2, 2)]  # the 7th is dropped
    assert batches[1][:, 0, 0].tolist() == [3, 4, 5]
    assert all(b.flags.c_contiguous for b in batches)
