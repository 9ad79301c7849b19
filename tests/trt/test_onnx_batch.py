"""Freeing the fixed batch of the two detectors, proven on ONNX Runtime (no GPU needed)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest

from engine.plates import process as plates
from engine.vehicles import process as vehicles
from trt_builder.onnx_batch import fixed_batch_inputs, make_batch_dynamic

HAS_ONNX = importlib.util.find_spec("onnx") is not None
needs_onnx = pytest.mark.skipif(not HAS_ONNX, reason="the onnx package is not installed")


def _samples(evaldata: Path, module, n: int = 3) -> list[np.ndarray]:
    paths = sorted((evaldata / "images" / "eu").glob("*.jpg"))[:n]
    return [module.preprocess(cv2.imread(str(p)))[0] for p in paths]


def test_which_models_have_a_fixed_batch(models_dir: Path) -> None:
    assert fixed_batch_inputs(models_dir / "plate_detector_yolov9t416.onnx") == ["images"]
    assert fixed_batch_inputs(models_dir / "vehicle_yolox_nano416.onnx") == ["images"]
    assert fixed_batch_inputs(models_dir / "plate_ocr_cct_xs_v2_global.onnx") == []


@needs_onnx
def test_vehicle_detector_batch(models_dir: Path, evaldata: Path) -> None:
    xs = _samples(evaldata, vehicles)
    res = make_batch_dynamic(models_dir / "vehicle_yolox_nano416.onnx", xs)
    assert res.model is not None, res.reason
    sess = ort.InferenceSession(res.model, providers=["CPUExecutionProvider"])
    assert sess.get_inputs()[0].shape[0] == "batch"
    out = sess.run(None, {"images": np.concatenate(xs)})[0]
    assert out.shape == (3, 3549, 85)


@needs_onnx
def test_plate_detector_batch_keeps_nms_rows_per_image(models_dir: Path, evaldata: Path):
    xs = _samples(evaldata, plates)
    path = models_dir / "plate_detector_yolov9t416.onnx"
    res = make_batch_dynamic(path, xs)
    assert res.model is not None, res.reason
    batched = ort.InferenceSession(res.model, providers=["CPUExecutionProvider"]).run(
        None, {"images": np.concatenate(xs)}
    )[0]
    single = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for i, x in enumerate(xs):
        alone = single.run(None, {"images": x})[0]
        rows = batched[batched[:, 0] == i]
        assert len(alone) and np.allclose(rows[:, 1:], alone[:, 1:], atol=1e-3)


@needs_onnx
def test_a_rewrite_that_fails_the_proof_is_refused(models_dir: Path, evaldata: Path,
                                                    monkeypatch) -> None:
    """ONNX Runtime's proof decides: a graph that cannot run batched is not used."""
    import trt_builder.onnx_batch as ob

    path = models_dir / "vehicle_yolox_nano416.onnx"
    monkeypatch.setattr(ob, "_rewrite", lambda p: (Path(p).read_bytes(), 0))  # batch still 1
    res = make_batch_dynamic(path, _samples(evaldata, vehicles))
    assert res.model is None and "does not run with a batch" in res.reason


def test_without_onnx_builds_at_batch_1(models_dir: Path, evaldata: Path, monkeypatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "onnx" else real(name, *a))
    res = make_batch_dynamic(models_dir / "vehicle_yolox_nano416.onnx",
                             _samples(evaldata, vehicles, 2))
    assert res.model is None and "pip install onnx" in res.reason


def test_needs_two_samples(models_dir: Path) -> None:
    res = make_batch_dynamic(models_dir / "vehicle_yolox_nano416.onnx", [])
    assert res.model is None and ("two sample" in res.reason or "onnx" in res.reason)
