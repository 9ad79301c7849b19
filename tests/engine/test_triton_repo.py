"""``platestream models export-triton``: the repository's configs parse as Triton's own
ModelConfig protobuf and say what each model can do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine import models
from engine.backends.triton_repo import MANIFEST, export_triton
from engine.models import sha256_file
from stream.cli import main

pytest.importorskip("tritonclient.grpc", reason="tritonclient[grpc] is not installed")
from google.protobuf import text_format  # noqa: E402 - tritonclient[grpc] brings protobuf
from tritonclient.grpc import model_config_pb2  # noqa: E402


def _config(repo: Path, name: str):
    return text_format.Parse((repo / name / "config.pbtxt").read_text(),
                             model_config_pb2.ModelConfig())


def test_export_writes_an_onnxruntime_repository_with_dynamic_batching(tmp_path, models_dir,
                                                                       capsys):
    repo = tmp_path / "repo"
    assert main(["models", "export-triton", str(repo), "--models-dir", str(models_dir),
                 "--device", "cpu", "--instances", "2", "--max-batch", "16"]) == 0
    assert "plate_ocr/1/model.onnx: onnxruntime_onnx, max batch 16" in capsys.readouterr().out
    kind_cpu = model_config_pb2.ModelInstanceGroup.KIND_CPU

    ocr = _config(repo, "plate_ocr")
    assert (ocr.platform, ocr.max_batch_size) == ("onnxruntime_onnx", 16)
    assert list(ocr.dynamic_batching.preferred_batch_size) == [4, 8, 16]
    assert ocr.dynamic_batching.max_queue_delay_microseconds > 0
    assert [(g.count, g.kind) for g in ocr.instance_group] == [(2, kind_cpu)]
    assert [(i.name, list(i.dims)) for i in ocr.input] == [("input", [64, 128, 3])]
    assert {o.name for o in ocr.output} == {"plate", "region"}
    src = models.model_path(models.PLATE_OCR, models_dir)
    assert sha256_file(repo / "plate_ocr/1/model.onnx") == sha256_file(src)
    assert ocr.parameters["platestream_sha256"].string_value == sha256_file(src)

    det = _config(repo, "plate_detector")  # in-graph NMS: not splittable per request
    assert det.max_batch_size == 0 and not det.HasField("dynamic_batching")
    assert list(det.input[0].dims) == [1, 3, 416, 416]

    veh = _config(repo, "vehicle_detector")  # fixed batch 1 in the file, freed and verified
    assert veh.max_batch_size == 16 and veh.HasField("dynamic_batching")
    assert list(veh.input[0].dims) == [3, 416, 416]
    assert list(veh.output[0].dims) == [3549, 85]

    manifest = json.loads((repo / MANIFEST).read_text())
    assert [m["name"] for m in manifest["models"]] == [
        "plate_detector", "plate_ocr", "vehicle_detector"]

    # an existing repository is not overwritten by accident
    assert main(["models", "export-triton", str(repo), "--models-dir", str(models_dir)]) == 1
    assert "already there (use --force" in capsys.readouterr().err


def _fake_engine(engines: Path, spec: models.ModelSpec, models_dir: Path, max_batch: int,
                 sha: str | None = None) -> None:
    from engine.backends.engine_cache import engine_path, meta_path

    onnx = models.model_path(spec, models_dir)
    path = engine_path(engines, onnx)
    path.write_bytes(b"serialized TensorRT engine " + spec.key.encode())
    meta_path(path).write_text(json.dumps({"key": {
        "gpu_name": "NVIDIA L4", "compute_capability": "8.9", "tensorrt": "10.3.0",
        "model_sha256": sha or sha256_file(onnx), "max_batch": max_batch}}))


def test_export_uses_tensorrt_plans_built_by_build_engines(tmp_path, models_dir):
    engines = tmp_path / "engines"
    engines.mkdir()
    _fake_engine(engines, models.PLATE_OCR, models_dir, 8)
    _fake_engine(engines, models.PLATE_DETECTOR, models_dir, 8)
    _fake_engine(engines, models.VEHICLE_DETECTOR, models_dir, 8, sha="0" * 64)  # stale
    repo = tmp_path / "repo"
    written = {m.name: m for m in export_triton(repo, models_dir, engines_dir=engines)}

    ocr = _config(repo, "plate_ocr")
    assert (ocr.platform, ocr.max_batch_size) == ("tensorrt_plan", 8)
    assert list(ocr.dynamic_batching.preferred_batch_size) == [2, 4, 8]
    assert ocr.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_GPU
    assert ocr.parameters["tensorrt_version"].string_value == "10.3.0"
    assert (repo / "plate_ocr/1/model.plan").read_bytes().endswith(b"plate_ocr")

    det = _config(repo, "plate_detector")  # a free batch in the plan, one image per request
    assert det.platform == "tensorrt_plan" and det.max_batch_size == 0
    assert list(det.input[0].dims) == [-1, 3, 416, 416]

    # an engine built from other model bytes is never exported: ONNX Runtime instead
    assert written["vehicle_detector"].platform == "onnxruntime_onnx"
    assert (repo / "vehicle_detector/1/model.onnx").is_file()
