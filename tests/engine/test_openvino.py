"""OpenVINO (engine.backends.openvino): the same ONNX models, compiled by OpenVINO, find and read
what ONNX Runtime does, in fp32 and (on a CPU with bfloat16) bf16."""

from __future__ import annotations

import json
import locale
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("openvino")

from engine import Recognizer, models, read_image_file  # noqa: E402
from engine.backends.onnxruntime import OrtBackend  # noqa: E402
from engine.backends.openvino import OvBackend  # noqa: E402
from engine.errors import EngineConfigError, ModelLoadError  # noqa: E402
from engine.geometry import iou  # noqa: E402
from engine.plates import process  # noqa: E402
from engine.precision import BF16_FLAGS, cpu_flags  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
BF16 = bool(cpu_flags(BF16_FLAGS))
PRECISIONS = ["fp32", pytest.param("bf16", marks=pytest.mark.skipif(
    not BF16, reason="this CPU has no bfloat16 instructions (AMX or AVX-512 BF16)"))]


@pytest.fixture(scope="module")
def ov_cache(tmp_path_factory) -> Path:
    """The int8 cache directory's stand-in: OpenVINO's compiled models go beside it."""
    return tmp_path_factory.mktemp("models") / "int8"


@pytest.fixture(scope="module")
def ov_recognizers(models_dir, ov_cache) -> dict[str, Recognizer]:
    return {p: Recognizer.from_models_dir(models_dir, backend="openvino", threads=2,
                                          precision=p, int8_cache=ov_cache)
            for p in ("fp32", "bf16") if p == "fp32" or BF16}


def _plate_rows(out: np.ndarray) -> np.ndarray:
    rows = out[out[:, 6] >= 0.25]
    return rows[np.argsort(rows[:, 1])]


@pytest.mark.parametrize("precision", PRECISIONS)
def test_plate_detector_matches_onnxruntime(models_dir, eu1, precision):
    path = models_dir / models.PLATE_DETECTOR.filename
    x, _ = process.preprocess(eu1)
    want = _plate_rows(OrtBackend(path, 1).infer({"images": x})["output0"])
    got = _plate_rows(OvBackend(path, 1, precision).infer({"images": x})["output0"])
    assert len(want) and got.shape == want.shape
    tol = 0.5 if precision == "fp32" else 3.0  # pixels of the 416 canvas; bf16 keeps 8 bits
    np.testing.assert_allclose(got[:, 1:5], want[:, 1:5], atol=tol)
    np.testing.assert_allclose(got[:, 6], want[:, 6], atol=0.002 if precision == "fp32" else 0.03)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_recognizer_reads_what_onnxruntime_reads(recognizer, ov_recognizers, endtoend, evaldata,
                                                 precision):
    ov = ov_recognizers[precision]
    assert ov.backend_name == f"openvino:CPU:{precision}" and ov.precision == precision
    rows = endtoend[3::20]
    same, right = 0, {"onnxruntime": 0, "openvino": 0}
    for row in rows:
        img = read_image_file(evaldata / row["image"])
        truth = {p["text"].lower() for p in row["plates"]}
        hint = [row["region"]] if row["region"] != "eu" else []
        a = [(p.plate, p.box.xyxy) for p in recognizer.recognize(img, hint).results]
        b = [(p.plate, p.box.xyxy) for p in ov.recognize(img, hint).results]
        same += [t for t, _ in a] == [t for t, _ in b]
        right["onnxruntime"] += truth <= {t for t, _ in a}
        right["openvino"] += truth <= {t for t, _ in b}
        if len(a) == len(b):  # the same plates, in the same places
            for (_, ba), (_, bb) in zip(a, b, strict=True):
                assert iou(np.array(ba, float), np.array([bb], float))[0] >= 0.85, (row, a, b)
    if precision == "fp32":
        assert same == len(rows)
    else:  # bfloat16 keeps 8 bits: a letter may change, the set reads as well (eval: +1 image)
        assert same >= len(rows) - 2 and right["openvino"] >= right["onnxruntime"] - 1, right


def test_the_process_locale_is_left_alone(ov_recognizers, eu1):
    """OpenVINO's other frontends set the C locale to "C" when left to guess a model's format
    (Python's default encoding turned ASCII after one image, and open() of UTF-8 text failed)."""
    before = locale.setlocale(locale.LC_CTYPE), locale.getpreferredencoding(False)
    for rec in ov_recognizers.values():
        rec.recognize(eu1)
    assert (locale.setlocale(locale.LC_CTYPE), locale.getpreferredencoding(False)) == before


def test_each_thread_runs_its_own_compiled_model(models_dir, eu1):
    """Two engine workers never queue for one OpenVINO stream, and each gets right answers."""
    backend = OvBackend(models_dir / models.PLATE_DETECTOR.filename, 1, "fp32")
    x, _ = process.preprocess(eu1)
    want = backend.infer({"images": x})["output0"]
    got, requests = [], []

    def run() -> None:
        for _ in range(3):
            got.append(backend.infer({"images": x})["output0"])
        requests.append(backend._local.request)  # held: an id is not reused while alive

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(got) == 9 and all(np.array_equal(g, want) for g in got)
    assert len({id(r) for r in [*requests, backend._local.request]}) == 4


def test_compiled_models_are_cached_and_a_bad_cache_dir_is_only_a_warning(
        models_dir, tmp_path, caplog):
    path = models_dir / models.PLATE_OCR.filename
    crops = {"input": np.zeros((2, 64, 128, 3), np.uint8)}
    ocr = OvBackend(path, 1, "fp32", cache_dir=tmp_path / "ov")
    assert not (tmp_path / "ov").exists() or not list((tmp_path / "ov").iterdir())
    ocr.infer(crops)  # compiled on the first call
    assert list((tmp_path / "ov").iterdir())  # a compiled blob
    (tmp_path / "file").write_text("not a directory")
    with caplog.at_level(logging.WARNING):
        ocr = OvBackend(path, 1, "fp32", cache_dir=tmp_path / "file" / "ov")
    assert "no OpenVINO model cache in" in caplog.text
    assert [v.shape[0] for v in ocr.infer(crops).values()] == [2, 2]


def test_a_broken_model_is_a_load_error(tmp_path):
    bad = tmp_path / "plate_detector_yolov9t416.onnx"
    bad.write_bytes(b"\x08\x07garbage")
    with pytest.raises(ModelLoadError, match="cannot load model .*plate_detector_yolov9t416"):
        OvBackend(bad, 1)


def test_int8_is_refused_on_openvino(models_dir, ov_cache):
    with pytest.raises(EngineConfigError, match="int8 is ONNX Runtime's"):
        Recognizer.from_models_dir(models_dir, backend="openvino", precision="int8",
                                   int8_cache=ov_cache)


def test_read_cli_on_openvino(evaldata, ov_cache):
    # the fixtures' compiled models, from OpenVINO's cache beside ov_cache (the same threads)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PLATESTREAM_INT8_CACHE": str(ov_cache),
           "PLATESTREAM_PRECISION": "auto"}
    out = subprocess.run([sys.executable, "-m", "stream.cli", "read", "--backend", "openvino",
                          "--threads", "2", str(evaldata / "images/eu/eu1.jpg")], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout)["results"][0]["plate"] == "m5xsx"
    assert "backend openvino" in out.stderr
    assert f"precision {'bf16' if BF16 else 'fp32'}" in out.stderr
