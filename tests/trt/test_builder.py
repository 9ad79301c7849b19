"""The builder's decisions (what to build, what is cached) with a fake GPU identity."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import pytest

from engine.backends.engine_cache import write_meta
from engine.backends.tensorrt import TENSORRT_MISSING, GpuInfo
from trt_builder.builder import BuildOptions, build_engines, plan, validate
from trt_builder.errors import BuildArgumentError, BuildError

GPU = GpuInfo("NVIDIA Orin", "8.7", 7620)


@pytest.fixture
def opts(models_dir: Path, tmp_path: Path) -> BuildOptions:
    return BuildOptions(models_dir=models_dir, out_dir=tmp_path / "engines", fp16=True)


def test_plan_builds_everything_first(opts: BuildOptions) -> None:
    planned = plan(opts, GPU, "10.3.0", [])
    assert [p.target.spec.key for p in planned] == [
        "plate_detector", "plate_ocr", "vehicle_detector"
    ]
    assert all(p.stale and "does not exist" in p.stale for p in planned)
    assert planned[0].engine == opts.out_dir / "plate_detector_yolov9t416.engine"
    assert planned[0].key.precision == "fp16" and planned[0].key.max_batch == 8


def _fake_build(planned) -> None:
    for p in planned:
        p.engine.parent.mkdir(parents=True, exist_ok=True)
        p.engine.write_bytes(b"engine for " + p.onnx.name.encode())
        write_meta(p.engine, p.key)


def test_cached_until_gpu_trt_model_or_options_change(opts: BuildOptions, tmp_path: Path):
    _fake_build(plan(opts, GPU, "10.3.0", []))
    assert [p.stale for p in plan(opts, GPU, "10.3.0", [])] == [None, None, None]
    assert all("tensorrt: '10.3.0' -> '10.4.0'" in p.stale
               for p in plan(opts, GPU, "10.4.0", []))
    other_gpu = GpuInfo("NVIDIA H100 80GB HBM3", "9.0", 81000)
    assert all("gpu_name" in p.stale for p in plan(opts, other_gpu, "10.3.0", []))
    int8 = dataclasses.replace(opts, int8=True)
    assert all("precision: 'fp16' -> 'int8'" in p.stale for p in plan(int8, GPU, "10.3.0", []))
    forced = dataclasses.replace(opts, force=True)
    assert [p.stale for p in plan(forced, GPU, "10.3.0", [])] == ["--force"] * 3


def test_changed_model_bytes_make_the_engine_stale(opts: BuildOptions, tmp_path: Path):
    models = tmp_path / "models"
    models.mkdir()
    for f in opts.models_dir.iterdir():
        (models / f.name).symlink_to(f)
    ocr = models / "plate_ocr_cct_xs_v2_global.onnx"
    ocr.unlink()
    ocr.write_bytes((opts.models_dir / ocr.name).read_bytes() + b"\0")
    local = dataclasses.replace(opts, models_dir=models, only=("plate_ocr",))
    before = plan(local, GPU, "10.3.0", [])
    _fake_build(before)
    ocr.write_bytes((opts.models_dir / ocr.name).read_bytes())  # a different model now
    (after,) = plan(local, GPU, "10.3.0", [])
    assert "model_sha256" in after.stale


def test_only_and_calibration_digest(opts: BuildOptions, evaldata: Path) -> None:
    imgs = sorted((evaldata / "images" / "eu").glob("*.jpg"))[:4]
    int8 = dataclasses.replace(opts, int8=True, only=("vehicle_detector",))
    (p,) = plan(int8, GPU, "10.3.0", imgs)
    (q,) = plan(int8, GPU, "10.3.0", imgs[:3])
    assert p.key.calib_sha256 and p.key.calib_sha256 != q.key.calib_sha256


def test_validate_returns_calibration_images(opts: BuildOptions, evaldata: Path) -> None:
    assert validate(opts) == []
    int8 = dataclasses.replace(opts, int8=True, calib_images=evaldata / "images", calib_max=5)
    images = validate(int8)
    assert len(images) == 5 and images == sorted(images)
    with pytest.raises(BuildArgumentError, match="--max-batch"):
        validate(dataclasses.replace(opts, max_batch=0))


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None,
                    reason="TensorRT is installed here")
def test_build_without_tensorrt(opts: BuildOptions) -> None:
    with pytest.raises(BuildError) as exc:
        build_engines(opts)
    assert str(exc.value) == TENSORRT_MISSING
    assert not opts.out_dir.exists()
