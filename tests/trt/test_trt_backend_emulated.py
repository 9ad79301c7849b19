"""TrtBackend's buffer, shape and copy logic, on a simulated GPU (see fake_gpu.py).

The real TensorRT runs in test_gpu.py on GPU machines; this checks, everywhere, that the
backend hands TensorRT the right addresses and shapes and returns what the model computed.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine import Recognizer
from engine.backends import open_backend
from engine.backends.tensorrt import TrtBackend, gpu_info
from engine.errors import BackendError, ModelLoadError
from engine.models import PLATE_DETECTOR, PLATE_OCR, PLATE_OCR_CONFIG, VEHICLE_DETECTOR
from engine.ocr import PlateOCR, load_ocr_config
from engine.plates import PlateDetector
from engine.vehicles import VehicleDetector
from stream.wire import snapshot_response

spec = importlib.util.spec_from_file_location("fake_gpu", Path(__file__).with_name("fake_gpu.py"))
fake_gpu = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fake_gpu)


@pytest.fixture
def gpu(monkeypatch):
    return fake_gpu.install(monkeypatch)


@pytest.fixture
def engines(tmp_path: Path, models_dir: Path) -> dict[str, Path]:
    return {
        s.key: fake_gpu.write_engine(tmp_path / f"{s.key}.engine", models_dir / s.filename,
                                     8 if s is PLATE_OCR else 1)
        for s in (PLATE_DETECTOR, PLATE_OCR, VEHICLE_DETECTOR)
    }


@pytest.fixture(scope="module")
def frames(evaldata: Path) -> list[np.ndarray]:
    return [cv2.imread(str(p)) for p in sorted((evaldata / "images" / "eu").glob("*.jpg"))[:3]]


def test_gpu_info_from_cuda(gpu) -> None:
    info = gpu_info()
    assert (info.name, info.compute_capability, info.memory_mb) == ("Fake GPU", "8.7", 8192)


def test_ocr_dynamic_batch(gpu, engines, models_dir: Path) -> None:
    trt = open_backend(engines["plate_ocr"])
    ort = open_backend(models_dir / PLATE_OCR.filename)
    assert isinstance(trt, TrtBackend)
    (name, spec), = trt.inputs().items()
    assert (name, spec.shape, spec.dtype) == ("input", (None, 64, 128, 3), np.dtype(np.uint8))
    assert trt.max_batch == 8
    rng = np.random.default_rng(0)
    for n in (1, 3, 8):
        x = rng.integers(0, 256, (n, 64, 128, 3), np.uint8)
        got, want = trt.infer({"input": x}), ort.infer({"input": x})
        assert set(got) == {"plate", "region"}
        np.testing.assert_array_equal(got["plate"], want["plate"])
        np.testing.assert_array_equal(got["region"], want["region"])
    with pytest.raises(BackendError, match=r"outside the engine's profile \(max \(8, 64"):
        trt.infer({"input": np.zeros((9, 64, 128, 3), np.uint8)})
    with pytest.raises(BackendError, match="missing input"):
        trt.infer({})
    trt.close()


def test_outputs_are_copies(gpu, engines) -> None:
    trt = open_backend(engines["plate_ocr"])
    a = trt.infer({"input": np.zeros((1, 64, 128, 3), np.uint8)})["plate"]
    keep = a.copy()
    trt.infer({"input": np.full((1, 64, 128, 3), 200, np.uint8)})
    np.testing.assert_array_equal(a, keep)  # the reused pinned buffer did not change it
    trt.close()


def test_plate_detector_data_dependent_output(gpu, engines, models_dir, frames) -> None:
    from engine.plates.process import preprocess

    trt = open_backend(engines["plate_detector"])
    ort = open_backend(models_dir / PLATE_DETECTOR.filename)
    sizes = []
    for img in frames + [np.zeros((300, 300, 3), np.uint8)]:
        x, _ = preprocess(img)
        got, want = trt.infer({"images": x})["output0"], ort.infer({"images": x})["output0"]
        np.testing.assert_array_equal(got, want)
        sizes.append(len(got))
    assert max(sizes) > 0  # real plates were found, so the allocator grew and shrank
    trt.close()


def test_close_frees_everything(gpu, engines) -> None:
    for path in engines.values():
        trt = open_backend(path)
        assert gpu.live
        trt.close()
        assert gpu.live == {}
        trt.close()  # twice is fine


def test_bad_engine_file(gpu, tmp_path: Path) -> None:
    bad = tmp_path / "x.engine"
    bad.write_bytes(b"\x00garbage")
    with pytest.raises(ModelLoadError, match="rebuild it with `platestream build-engines`"):
        TrtBackend(bad)
    with pytest.raises(ModelLoadError, match="cannot read TensorRT engine"):
        TrtBackend(tmp_path / "missing.plan")


def test_recognizer_on_trt_backends_equals_onnxruntime(gpu, engines, models_dir, frames):
    cfg = load_ocr_config(models_dir / PLATE_OCR_CONFIG.filename)

    def build(path_of) -> Recognizer:
        return Recognizer(PlateDetector(open_backend(path_of("plate_detector"))),
                          PlateOCR(open_backend(path_of("plate_ocr")), cfg),
                          VehicleDetector(open_backend(path_of("vehicle_detector"))))

    files = {s.key: models_dir / s.filename for s in (PLATE_DETECTOR, PLATE_OCR,
                                                      VEHICLE_DETECTOR)}
    ort, trt = build(files.__getitem__), build(engines.__getitem__)
    for img in frames:
        a = snapshot_response(ort.recognize(img, mmc=True))
        b = snapshot_response(trt.recognize(img, mmc=True))
        a.pop("processing_time"), b.pop("processing_time")
        assert a == b and a["results"]


def test_unknown_suffix() -> None:
    with pytest.raises(BackendError, match=r"expected \.onnx, \.engine or \.plan"):
        open_backend(Path("model.trt"))


def test_no_tensorrt_message(monkeypatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "tensorrt", None)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda n, *a: None if n == "tensorrt" else real(n, *a))
    with pytest.raises(BackendError, match=r"TensorRT is not installed \(pip install "
                       r"platestream\[tensorrt\] on a machine with an NVIDIA GPU\)"):
        TrtBackend(Path("x.engine"))
