"""build_engines end to end on a simulated GPU (see fake_gpu.py): what it asks TensorRT for
(profiles, flags, calibration data), what it writes (engines + records), the cache, and
that the engines it produced run and agree with ONNX Runtime."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.backends import open_backend
from engine.errors import ModelLoadError
from engine.models import PLATE_DETECTOR, PLATE_OCR
from engine.plates import process as plates
from trt_builder.builder import BuildOptions, build_engines
from trt_builder.calibrator import list_images
from trt_builder.errors import BuildError

spec = importlib.util.spec_from_file_location("fake_gpu", Path(__file__).with_name("fake_gpu.py"))
fake_gpu = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fake_gpu)

HAS_ONNX = importlib.util.find_spec("onnx") is not None


@pytest.fixture
def gpu(monkeypatch):
    fake_gpu.BUILDS.clear()
    return fake_gpu.install(monkeypatch)


@pytest.fixture
def opts(models_dir: Path, tmp_path: Path) -> BuildOptions:
    return BuildOptions(models_dir=models_dir, out_dir=tmp_path / "engines", fp16=True)


def test_build_then_cache(gpu, opts: BuildOptions) -> None:
    results = build_engines(opts)
    assert [(r.model, r.status) for r in results] == [
        ("plate_detector", "built"), ("plate_ocr", "built"), ("vehicle_detector", "built")
    ]
    ocr_build = fake_gpu.BUILDS[1]
    assert ocr_build["flags"] == ["fp16"]
    assert ocr_build["profiles"] == [{"input": ((1, 64, 128, 3), (8, 64, 128, 3),
                                                (8, 64, 128, 3))}]
    meta = json.loads((opts.out_dir / "plate_ocr_cct_xs_v2_global.engine.json").read_text())
    assert meta["key"]["gpu_name"] == "Fake GPU" and meta["key"]["tensorrt"] == "10.3.0"
    assert meta["key"]["precision"] == "fp16" and meta["profile_max_batch"] == 8
    assert gpu.live == {}  # nothing left allocated by the build
    again = build_engines(opts)
    assert [r.status for r in again] == ["cached"] * 3
    assert len(fake_gpu.BUILDS) == 3  # nothing rebuilt


def test_detectors_batch(gpu, opts: BuildOptions) -> None:
    results = {r.model: r for r in build_engines(opts)}
    det_profiles = fake_gpu.BUILDS[0]["profiles"]
    if HAS_ONNX:
        assert "dynamic batch 1..8 (rewritten)" in results["plate_detector"].detail
        assert det_profiles == [{"images": ((1, 3, 416, 416), (8, 3, 416, 416),
                                            (8, 3, 416, 416))}]
    else:
        assert "batch 1 (the onnx package is not installed" in results["plate_detector"].detail
        assert det_profiles == []


def test_max_batch_1_builds_fixed(gpu, opts: BuildOptions) -> None:
    results = build_engines(dataclasses.replace(opts, max_batch=1, only=("vehicle_detector",)))
    assert results[0].detail == "fp16, batch 1"
    assert fake_gpu.BUILDS[0]["profiles"] == []


def test_built_engines_run_like_onnxruntime(gpu, opts, models_dir, evaldata) -> None:
    build_engines(opts)
    frames = [cv2.imread(str(p)) for p in sorted((evaldata / "images/eu").glob("*.jpg"))[:3]]
    xs = [plates.preprocess(f)[0] for f in frames]
    trt = open_backend(opts.out_dir / "plate_detector_yolov9t416.engine")
    ort = open_backend(models_dir / PLATE_DETECTOR.filename)
    for x in xs:
        np.testing.assert_array_equal(trt.infer({"images": x})["output0"],
                                      ort.infer({"images": x})["output0"])
    if HAS_ONNX:  # the rewritten detector: one call for 3 frames, rows tagged per frame
        rows = trt.infer({"images": np.concatenate(xs)})["output0"]
        for i, x in enumerate(xs):
            np.testing.assert_allclose(rows[rows[:, 0] == i][:, 1:],
                                       ort.infer({"images": x})["output0"][:, 1:], atol=1e-3)
    trt.close()


def test_int8_calibrates_on_engine_preprocessing(gpu, opts, evaldata: Path) -> None:
    calib = evaldata / "images" / "eu"
    int8 = dataclasses.replace(opts, int8=True, calib_images=calib, calib_max=10, max_batch=4)
    results = build_engines(int8)
    assert all(r.status == "built" for r in results)
    det, ocr, veh = fake_gpu.BUILDS
    assert det["flags"] == ocr["flags"] == ["fp16", "int8"]
    images = list_images(calib, 10)
    first = plates.preprocess(cv2.imread(str(images[0])))[0]
    batch = 4 if HAS_ONNX else 1
    assert det["batches"][0].shape == (batch, 3, 416, 416)
    np.testing.assert_array_equal(det["batches"][0][0], first[0])
    assert len(det["batches"]) == 10 // batch
    assert ocr["batches"] and ocr["batches"][0].shape == (4, 64, 128, 3)
    assert ocr["batches"][0].dtype == np.uint8
    assert ocr["calibration_profile"].shapes["input"][0] == (4, 64, 128, 3)
    assert list(opts.out_dir.glob("*.calib"))  # calibration tables cached beside the engines
    meta = json.loads((opts.out_dir / "vehicle_yolox_nano416.engine.json").read_text())
    assert meta["key"]["precision"] == "int8" and meta["key"]["calib_sha256"]
    assert gpu.live == {}  # the calibrators' device buffers were freed


def test_int8_without_plates_for_the_ocr(gpu, opts, tmp_path: Path) -> None:
    blank = tmp_path / "calib"
    blank.mkdir()
    for i in range(4):
        cv2.imwrite(str(blank / f"{i}.png"), np.full((240, 320, 3), 90 + i, np.uint8))
    int8 = dataclasses.replace(opts, int8=True, calib_images=blank, only=("plate_ocr",))
    with pytest.raises(BuildError, match="no calibration data for plate_ocr .no plates found"):
        build_engines(int8)


def _broken_models(tmp_path: Path, models_dir: Path) -> Path:
    broken = tmp_path / "models"
    broken.mkdir()
    for f in models_dir.iterdir():
        (broken / f.name).symlink_to(f)
    (broken / PLATE_OCR.filename).unlink()
    (broken / PLATE_OCR.filename).write_bytes(b"not onnx")
    return broken


def test_corrupt_model_is_one_error(gpu, opts, tmp_path: Path, models_dir: Path) -> None:
    broken = _broken_models(tmp_path, models_dir)
    with pytest.raises(ModelLoadError, match="plate_ocr_cct_xs_v2_global.onnx is not a loadable"):
        build_engines(dataclasses.replace(opts, models_dir=broken, only=("plate_ocr",)))
    assert not (opts.out_dir / "plate_ocr_cct_xs_v2_global.engine").exists()


def test_parser_errors_are_one_error(gpu, opts, tmp_path: Path, models_dir: Path,
                                     monkeypatch) -> None:
    import trt_builder.onnx_batch as ob

    broken = _broken_models(tmp_path, models_dir)
    monkeypatch.setattr(ob, "fixed_batch_inputs", lambda path: [])
    with pytest.raises(ModelLoadError, match="TensorRT cannot parse plate_ocr.*not an ONNX"):
        build_engines(dataclasses.replace(opts, models_dir=broken, only=("plate_ocr",)))
    assert not (opts.out_dir / "plate_ocr_cct_xs_v2_global.engine").exists()
