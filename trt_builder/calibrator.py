"""INT8 calibration data from real images, preprocessed exactly as the engine does it.

The detectors are calibrated on the letterboxed frames that ``engine.plates.process`` and
``engine.vehicles.process`` produce (the same functions, not copies). The OCR is calibrated
on real plate crops: the ONNX plate detector (CPU) finds the plates in the calibration
images and ``engine.ocr.process`` turns the crops into OCR input, as at run time.

``calibration_batches`` is pure NumPy/OpenCV (tested without a GPU); ``EntropyCalibrator``
wraps it in TensorRT's ``IInt8EntropyCalibrator2`` with one device buffer (cuda-python).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np

from engine.backends.tensorrt import _cudart, cuda_check
from trt_builder.errors import BuildError

__all__ = [
    "Role",
    "IMAGE_SUFFIXES",
    "list_images",
    "images_digest",
    "preprocessed_inputs",
    "calibration_batches",
    "make_calibrator",
]

log = logging.getLogger(__name__)

Role = Literal["plate_detector", "plate_ocr", "vehicle_detector"]
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def list_images(folder: Path, limit: int | None = None) -> list[Path]:
    """Image files under ``folder`` (recursive, sorted so a build is reproducible)."""
    files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    return files[:limit] if limit else files


def images_digest(paths: Sequence[Path]) -> str:
    """Digest of the calibration set (names and sizes): a different set means a rebuild."""
    h = hashlib.sha256()
    for p in paths:
        h.update(f"{p.name}:{p.stat().st_size}\n".encode())
    return h.hexdigest()


def _read(paths: Sequence[Path]) -> Iterator[np.ndarray]:
    for p in paths:
        img = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if img is None:
            log.warning("calibration: %s is not a readable image; skipped", p)
            continue
        yield img


def preprocessed_inputs(
    role: Role, paths: Sequence[Path], models_dir: Path
) -> Iterator[np.ndarray]:
    """One model input per image (detectors) or per plate found (OCR), batch dim 1 each."""
    if role == "plate_ocr":
        yield from _ocr_inputs(paths, models_dir)
        return
    preprocess = detector_preprocess(role)
    for img in _read(paths):
        yield preprocess(img)[0]


def detector_preprocess(role: Role) -> Callable[[np.ndarray], tuple[np.ndarray, Any]]:
    """The engine's own preprocessing for a detector role (frame -> (input, letterbox))."""
    if role == "plate_detector":
        from engine.plates.process import preprocess
    elif role == "vehicle_detector":
        from engine.vehicles.process import preprocess
    else:
        raise BuildError(f"calibration: unknown model role {role!r}")
    return preprocess


def _ocr_inputs(paths: Sequence[Path], models_dir: Path) -> Iterator[np.ndarray]:
    from engine import models
    from engine.backends import open_backend
    from engine.geometry import crop
    from engine.ocr import load_ocr_config
    from engine.ocr.process import preprocess as ocr_preprocess
    from engine.plates import PlateDetector
    from engine.recognizer import CROP_PAD_X, CROP_PAD_Y  # the crop the OCR sees at run time

    det = PlateDetector(open_backend(models.model_path(models.PLATE_DETECTOR, models_dir)))
    cfg = load_ocr_config(models.model_path(models.PLATE_OCR_CONFIG, models_dir))
    try:
        for img in _read(paths):
            for xyxy in det.detect(img).xyxy:
                yield ocr_preprocess([crop(img, xyxy, CROP_PAD_X, CROP_PAD_Y)], cfg)
    finally:
        det.backend.close()


def calibration_batches(inputs: Iterator[np.ndarray], batch: int) -> Iterator[np.ndarray]:
    """Stack single inputs into C-contiguous batches of exactly ``batch`` (the rest dropped:
    TensorRT calibrates at one fixed shape)."""
    pending: list[np.ndarray] = []
    for x in inputs:
        pending.append(x)
        if len(pending) == batch:
            yield np.ascontiguousarray(np.concatenate(pending))
            pending = []


def make_calibrator(trt: Any, batches: Iterator[np.ndarray], shape: tuple[int, ...],
                    dtype: np.dtype, cache_file: Path) -> Any:
    """A ``trt.IInt8EntropyCalibrator2`` fed from ``batches`` (each of ``shape``/``dtype``).

    The device buffer is allocated once; ``free()`` releases it after the build.
    """
    cudart = _cudart()
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.device = cuda_check(cudart.cudaMalloc(nbytes))
            self.count = 0

        def get_batch_size(self) -> int:
            return int(shape[0])

        def get_batch(self, names: list[str]) -> list[int] | None:  # noqa: ARG002
            x = next(batches, None)
            if x is None:
                log.info("calibration: %d batches of %d", self.count, shape[0])
                return None
            x = np.ascontiguousarray(x, dtype=dtype)
            if x.shape != shape:
                raise BuildError(f"calibration batch shape {x.shape}, expected {shape}")
            kind = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
            cuda_check(cudart.cudaMemcpy(self.device, x.ctypes.data, x.nbytes, kind))
            self.count += 1
            return [int(self.device)]

        def read_calibration_cache(self) -> bytes | None:
            return cache_file.read_bytes() if cache_file.is_file() else None

        def write_calibration_cache(self, cache: Any) -> None:
            cache_file.write_bytes(bytes(cache))

        def free(self) -> None:
            if self.device:
                cuda_check(cudart.cudaFree(self.device))
                self.device = 0

    return EntropyCalibrator()
