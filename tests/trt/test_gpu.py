"""On an NVIDIA GPU: build the engines, run them, and hold them to the ONNX Runtime results.

Skipped with the reason on machines without a GPU/TensorRT (see conftest.py). Set
``PLATESTREAM_TRT_PRECISION`` (fp32/fp16, default fp16) to choose what is built.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine import Recognizer
from engine.backends import open_backend
from engine.backends.engine_cache import engine_path
from engine.backends.select import select_backend
from engine.models import PLATE_DETECTOR, PLATE_OCR, PLATE_OCR_CONFIG, VEHICLE_DETECTOR
from engine.ocr import PlateOCR, load_ocr_config
from engine.plates import PlateDetector
from engine.vehicles import VehicleDetector
from trt_builder.builder import BuildOptions, build_engines

pytestmark = pytest.mark.gpu

PRECISION = os.environ.get("PLATESTREAM_TRT_PRECISION", "fp16")
TEXT_AGREEMENT = 0.99
BOX_TOLERANCE_PX = 2.0


@pytest.fixture(scope="session")
def engines(models_dir: Path, evaldata: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("engines")
    opts = BuildOptions(models_dir=models_dir, out_dir=out, fp16=PRECISION == "fp16",
                        calib_images=evaldata / "images" / "eu", max_batch=8)
    results = build_engines(opts)
    assert [r.status for r in results] == ["built"] * 3, [r.line() for r in results]
    return out


def _recognizers(models_dir: Path, engines: Path) -> tuple[Recognizer, Recognizer]:
    cfg = load_ocr_config(models_dir / PLATE_OCR_CONFIG.filename)

    def build(path_of) -> Recognizer:
        return Recognizer(
            PlateDetector(open_backend(path_of(PLATE_DETECTOR))),
            PlateOCR(open_backend(path_of(PLATE_OCR)), cfg),
            VehicleDetector(open_backend(path_of(VEHICLE_DETECTOR))),
        )

    ort = build(lambda s: models_dir / s.filename)
    trt = build(lambda s: engine_path(engines, models_dir / s.filename))
    return ort, trt


def test_second_build_uses_the_cache(models_dir: Path, engines: Path) -> None:
    opts = BuildOptions(models_dir=models_dir, out_dir=engines, fp16=PRECISION == "fp16")
    assert [r.status for r in build_engines(opts)] == ["cached"] * 3
    meta = json.loads((engines / "plate_ocr_cct_xs_v2_global.engine.json").read_text())
    assert meta["key"]["precision"] == PRECISION and meta["profile_max_batch"] == 8


def test_auto_picks_tensorrt(models_dir: Path, engines: Path) -> None:
    onnx = [models_dir / s.filename for s in (PLATE_DETECTOR, PLATE_OCR, VEHICLE_DETECTOR)]
    choice = select_backend("auto", engines, onnx)
    assert choice.kind == "tensorrt", choice.reason


def test_backend_inputs_match_onnx(models_dir: Path, engines: Path) -> None:
    for spec in (PLATE_DETECTOR, PLATE_OCR, VEHICLE_DETECTOR):
        ort = open_backend(models_dir / spec.filename)
        trt = open_backend(engine_path(engines, models_dir / spec.filename))
        try:
            (o_name, o_spec), = ort.inputs().items()
            (t_name, t_spec), = trt.inputs().items()
            assert (t_name, t_spec.dtype, t_spec.shape[1:]) == (o_name, o_spec.dtype,
                                                                o_spec.shape[1:])
        finally:
            trt.close()


def test_ocr_batch_of_8_equals_8_single_calls(models_dir: Path, engines: Path) -> None:
    trt = open_backend(engine_path(engines, models_dir / PLATE_OCR.filename))
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (8, 64, 128, 3), np.uint8)
    try:
        batched = trt.infer({"input": x})["plate"]
        singles = np.concatenate([trt.infer({"input": x[i:i + 1]})["plate"] for i in range(8)])
        assert batched.shape == (8, 10, 37)
        np.testing.assert_allclose(batched, singles, atol=2e-2)
    finally:
        trt.close()


def _match(a, b) -> list[tuple]:
    """Pairs of plates (ORT, TRT) whose boxes overlap most."""
    pairs = []
    for p in a:
        best = max(b, key=lambda q: _iou(p.box, q.box), default=None)
        if best is not None and _iou(p.box, best.box) > 0.5:
            pairs.append((p, best))
    return pairs


def _iou(a, b) -> float:
    ix = max(0, min(a.xmax, b.xmax) - max(a.xmin, b.xmin))
    iy = max(0, min(a.ymax, b.ymax) - max(a.ymin, b.ymin))
    inter = ix * iy
    union = a.width * a.height + b.width * b.height - inter
    return inter / union if union else 0.0


def test_parity_with_onnxruntime(models_dir: Path, engines: Path, evaldata: Path,
                                 endtoend: list[dict]) -> None:
    """Same plate text on >= 99% of images, boxes within 2 px."""
    ort, trt = _recognizers(models_dir, engines)
    same, far, total = 0, [], 0
    for row in endtoend:
        img = cv2.imread(str(evaldata / row["image"]))
        a, b = ort.recognize(img).results, trt.recognize(img).results
        total += 1
        if sorted(p.plate for p in a) == sorted(p.plate for p in b):
            same += 1
        for p, q in _match(a, b):
            d = max(abs(p.box.xmin - q.box.xmin), abs(p.box.ymin - q.box.ymin),
                    abs(p.box.xmax - q.box.xmax), abs(p.box.ymax - q.box.ymax))
            if d > BOX_TOLERANCE_PX:
                far.append((row["image"], d))
    assert same / total >= TEXT_AGREEMENT, f"same text on {same}/{total} images"
    assert not far, f"boxes more than {BOX_TOLERANCE_PX} px apart: {far[:10]}"
