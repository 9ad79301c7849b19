"""Int8 models: building them (engine.quantize), choosing them (engine.precision), loading them."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from engine import Recognizer, models, read_image_file
from engine.errors import EngineConfigError, EngineError
from engine.precision import INT8_FLAGS, cpu_flags, select_precision
from engine.quantize import calibration_frames, int8_path, quantize_models
from stream.cli import main

# --- precision: the decision table ------------------------------------------------------


def test_precision_auto_takes_int8_only_with_models_and_vnni():
    c = select_precision("auto", backend="onnxruntime", int8_ready=True, flags=("avx512_vnni",))
    assert c.precision == "int8" and "avx512_vnni" in c.reason
    c = select_precision("auto", backend="onnxruntime", int8_ready=True, flags=())
    assert c.precision == "fp32" and "VNNI" in c.reason
    c = select_precision("auto", backend="onnxruntime", int8_ready=False, flags=("amx_int8",))
    assert c.precision == "fp32" and "models quantize" in c.reason
    c = select_precision("auto", backend="tensorrt", int8_ready=True, flags=("amx_int8",))
    assert c.precision == "fp32" and "CPU backend" in c.reason


def test_precision_explicit_choices():
    assert select_precision("fp32", backend="onnxruntime", int8_ready=True,
                            flags=("avx_vnni",)).precision == "fp32"
    c = select_precision("int8", backend="onnxruntime", int8_ready=True, flags=())
    assert c.precision == "int8" and "slower" in c.reason
    with pytest.raises(EngineConfigError, match="models quantize"):
        select_precision("int8", backend="onnxruntime", int8_ready=False, flags=("avx_vnni",))
    with pytest.raises(EngineConfigError, match="build-engines --int8"):
        select_precision("int8", backend="tensorrt", int8_ready=True, flags=("avx_vnni",))
    with pytest.raises(EngineConfigError, match="expected one of auto, fp32, int8, bf16"):
        select_precision("int4", backend="onnxruntime", int8_ready=True, flags=())


def test_precision_on_openvino_is_bf16_where_the_cpu_has_it():
    amx = ("avx512_vnni", "amx_int8", "amx_bf16")
    c = select_precision("auto", backend="openvino", int8_ready=True, flags=amx)
    assert c.precision == "bf16" and "amx_bf16" in c.reason
    c = select_precision("auto", backend="openvino", int8_ready=True, flags=("avx512_vnni",))
    assert c.precision == "fp32" and "no bfloat16" in c.reason
    assert select_precision("bf16", backend="openvino", int8_ready=False,
                            flags=("avx512_bf16",)).precision == "bf16"
    assert select_precision("fp32", backend="openvino", int8_ready=True,
                            flags=amx).precision == "fp32"
    with pytest.raises(EngineConfigError, match="no bfloat16 instructions"):
        select_precision("bf16", backend="openvino", int8_ready=True, flags=("avx512_vnni",))
    with pytest.raises(EngineConfigError, match="int8 is ONNX Runtime's"):
        select_precision("int8", backend="openvino", int8_ready=True, flags=amx)
    with pytest.raises(EngineConfigError, match="bf16 runs on OpenVINO"):
        select_precision("bf16", backend="onnxruntime", int8_ready=True, flags=amx)


def test_cpu_flags_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_vnni amx_tile "
                    "amx_int8\n\nprocessor\t: 1\n")
    assert cpu_flags(INT8_FLAGS, info) == ("avx512_vnni", "amx_int8")
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx2\n")
    assert cpu_flags(INT8_FLAGS, info) == ()
    assert cpu_flags(INT8_FLAGS, tmp_path / "missing") == ()


# --- calibration frames -------------------------------------------------------------------


def test_default_calibration_is_deterministic(models_dir):
    a, what = calibration_frames(None, models_dir, 4)
    b, _ = calibration_frames(None, models_dir, 4)
    assert len(a) == 4 and "evaldata/images" in what
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_calibration_from_video_and_bad_paths(evaldata, tmp_path, models_dir):
    frames, what = calibration_frames(evaldata / "videos" / "cars.mp4", models_dir, 3)
    assert len(frames) == 3 and frames[0].ndim == 3 and "cars.mp4" in what
    assert not np.array_equal(frames[0], frames[1])  # spread over the video
    with pytest.raises(EngineError, match="no such file"):
        calibration_frames(tmp_path / "nope", models_dir)
    with pytest.raises(EngineError, match="no images"):
        calibration_frames(tmp_path, models_dir)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(EngineError, match="directory of images or a video"):
        calibration_frames(tmp_path / "notes.txt", models_dir)


# --- building, caching, loading -----------------------------------------------------------


@pytest.fixture(scope="module")
def calib_dir(tmp_path_factory, endtoend, evaldata) -> Path:
    """Eight labelled images with plates (a small, quick calibration set)."""
    d = tmp_path_factory.mktemp("calib")
    for row in endtoend[::37][:8]:
        shutil.copy(evaldata / row["image"], d / Path(row["image"]).name)
    return d


@pytest.fixture(scope="module")
def int8_cache(tmp_path_factory, calib_dir, models_dir) -> Path:
    cache = tmp_path_factory.mktemp("int8")
    report = quantize_models(models_dir, calib=calib_dir, cache=cache,
                             specs=(models.PLATE_DETECTOR,))
    assert len(report.built) == 1 and "8 images" in report.calibration
    return cache


def test_quantized_file_is_keyed_and_int8(int8_cache, models_dir):
    import onnx
    import onnxruntime as ort

    src = models_dir / models.PLATE_DETECTOR.filename
    path = int8_path(models.PLATE_DETECTOR, src, int8_cache)
    assert path is not None
    assert models.sha256_file(src)[:16] in path.name and f"ort{ort.__version__}" in path.name
    m = onnx.load(str(path), load_external_data=False)
    ops = {n.op_type for n in m.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "NonMaxSuppression"} <= ops
    meta = {p.key: p.value for p in m.metadata_props}
    assert meta["platestream.source_sha256"] == models.sha256_file(src)
    # the DFL/box maths and the NMS stay fp32: no Q/DQ pair feeds the NMS
    nms = next(n for n in m.graph.node if n.op_type == "NonMaxSuppression")
    producers = {o: n for n in m.graph.node for o in n.output}
    assert all(producers[i].op_type != "DequantizeLinear" for i in nms.input if i in producers)


def test_the_int8_plate_detector_averages_by_convolution(int8_cache, models_dir):
    import onnx

    src = onnx.load(str(models_dir / models.PLATE_DETECTOR.filename))
    m = onnx.load(str(int8_path(models.PLATE_DETECTOR, models_dir
                                / models.PLATE_DETECTOR.filename, int8_cache)))
    pools = [n.name for n in src.graph.node if n.op_type == "AveragePool"]
    assert len(pools) == 5  # YOLOv9-t's ADown blocks
    by_name = {n.name: n for n in m.graph.node}
    assert not any(n.op_type == "AveragePool" for n in m.graph.node)
    assert all(by_name[name].op_type == "Conv" for name in pools)


def test_average_pools_as_convolutions_compute_the_same(models_dir, evaldata):
    import onnx

    from engine.backends.onnxruntime import OrtBackend
    from engine.plates import process
    from engine.quantize import _average_pools_as_convolutions

    path = models_dir / models.PLATE_DETECTOR.filename
    rewritten = _average_pools_as_convolutions(onnx.load(str(path)))
    assert not any(n.op_type == "AveragePool" for n in rewritten.graph.node)
    x, _ = process.preprocess(read_image_file(evaldata / "images/eu/eu1.jpg"))
    want = OrtBackend(path, 1).infer({"images": x})["output0"]
    got = OrtBackend(path, 1, graph=rewritten.SerializeToString()).infer({"images": x})
    assert got["output0"].shape == want.shape and len(want)
    np.testing.assert_allclose(got["output0"], want, rtol=1e-4, atol=1e-2)

    # a padded pool (its border means count the padding) is left as it is
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("AveragePool", ["x"], ["y"], name="p", kernel_shape=[3, 3],
                          pads=[1, 1, 1, 1])],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 8, 8])])
    kept = _average_pools_as_convolutions(helper.make_model(graph))
    assert [n.op_type for n in kept.graph.node] == ["AveragePool"]


def test_int8_detector_finds_the_same_plates(int8_cache, models_dir, endtoend, evaldata):
    fp32 = Recognizer.from_models_dir(models_dir, threads=1, vehicles=False, precision="fp32")
    int8 = Recognizer.from_models_dir(models_dir, threads=1, vehicles=False, precision="int8",
                                      int8_cache=int8_cache)
    assert (fp32.precision, int8.precision) == ("fp32", "int8")
    assert "int8" in int8.plates.backend.path.name
    same = 0
    rows = endtoend[5::29][:8]
    for row in rows:
        img = read_image_file(evaldata / row["image"])
        a = {p.plate for p in fp32.recognize(img, config={"mode": "fast"}).results}
        b = {p.plate for p in int8.recognize(img, config={"mode": "fast"}).results}
        same += a == b
    assert same >= len(rows) - 1


def test_quantize_skips_fresh_and_removes_stale(int8_cache, models_dir, calib_dir):
    stale = int8_cache / "plate_detector_yolov9t416.0000000000000000.ort1.0.r1.int8.onnx"
    stale.write_bytes(b"old")
    report = quantize_models(models_dir, calib=calib_dir, cache=int8_cache,
                             specs=(models.PLATE_DETECTOR,))
    assert not report.built and len(report.fresh) == 1 and report.removed == (stale,)
    assert not stale.exists()


def test_int8_without_models_is_a_clear_error(tmp_path, models_dir):
    with pytest.raises(EngineConfigError, match="models quantize"):
        Recognizer.from_models_dir(models_dir, threads=1, vehicles=False, precision="int8",
                                   int8_cache=tmp_path)
    rec = Recognizer.from_models_dir(models_dir, threads=1, vehicles=False, precision="auto",
                                     int8_cache=tmp_path)
    assert rec.precision == "fp32"


def test_cli_quantize_bad_calib_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PLATESTREAM_INT8_CACHE", str(tmp_path / "cache"))
    assert main(["models", "quantize", "--calib", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such file" in err and "Traceback" not in err


def test_cli_read_precision_int8(int8_cache, evaldata, endtoend, monkeypatch, capsys):
    monkeypatch.setenv("PLATESTREAM_INT8_CACHE", str(int8_cache))
    img = str(evaldata / endtoend[0]["image"])
    assert main(["read", img, "--precision", "int8", "--threads", "1"]) == 0
    assert '"results"' in capsys.readouterr().out
