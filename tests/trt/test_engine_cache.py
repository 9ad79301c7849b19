"""Engine cache keys and staleness (pure; no GPU needed)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from engine.backends.engine_cache import EngineKey, engine_path, meta_path, stale_reason, write_meta

KEY = EngineKey("NVIDIA H100 80GB HBM3", "9.0", "10.3.0", "a" * 64, "fp16", 8)


@pytest.mark.parametrize(
    "change",
    [
        {"gpu_name": "Orin"},
        {"compute_capability": "8.7"},
        {"tensorrt": "10.4.0"},
        {"model_sha256": "b" * 64},
        {"precision": "int8"},
        {"max_batch": 16},
        {"calib_sha256": "c" * 64},
    ],
)
def test_digest_changes_with_every_field(change: dict) -> None:
    other = dataclasses.replace(KEY, **change)
    assert other.digest() != KEY.digest()
    assert [line.split(":")[0] for line in other.diff(KEY)] == list(change)


def test_digest_is_stable() -> None:
    assert KEY.digest() == dataclasses.replace(KEY).digest()
    assert len(KEY.digest()) == 16


def test_engine_path_is_per_model(tmp_path: Path) -> None:
    p = engine_path(tmp_path, Path("/m/plate_ocr_cct_xs_v2_global.onnx"))
    assert p == tmp_path / "plate_ocr_cct_xs_v2_global.engine"
    assert meta_path(p).name == "plate_ocr_cct_xs_v2_global.engine.json"


@pytest.fixture
def built(tmp_path: Path) -> Path:
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"serialized engine bytes")
    write_meta(engine, KEY, {"batch": "dynamic batch 1..8"})
    return engine


def test_fresh_engine(built: Path) -> None:
    assert stale_reason(built, KEY) is None
    assert json.loads(meta_path(built).read_text())["batch"] == "dynamic batch 1..8"


@pytest.mark.parametrize(
    "change, runtime_stale, build_stale",
    [
        ({"gpu_name": "Orin"}, "gpu_name: 'NVIDIA H100 80GB HBM3' -> 'Orin'", True),
        ({"tensorrt": "10.4.0"}, "tensorrt: '10.3.0' -> '10.4.0'", True),
        ({"model_sha256": "b" * 64}, "model_sha256", True),
        ({"compute_capability": "8.9"}, "compute_capability", True),
        # build options: a rebuild for the builder, still loadable for the runtime
        ({"precision": "fp32"}, None, True),
        ({"max_batch": 1}, None, True),
    ],
)
def test_stale_engine_detected(built: Path, change: dict, runtime_stale, build_stale) -> None:
    want = dataclasses.replace(KEY, **change)
    build = stale_reason(built, want)
    assert (build is not None) == build_stale
    runtime = stale_reason(built, want, runtime_only=True)
    if runtime_stale is None:
        assert runtime is None
    else:
        assert runtime is not None and runtime_stale in runtime
        assert "built for another setup" in runtime


def test_missing_engine_or_record(tmp_path: Path, built: Path) -> None:
    assert "does not exist" in stale_reason(tmp_path / "nope.engine", KEY)
    meta_path(built).unlink()
    assert "no readable model.engine.json record" in stale_reason(built, KEY)


def test_corrupt_record(built: Path) -> None:
    meta_path(built).write_text("{not json")
    assert "no readable" in stale_reason(built, KEY)
    meta_path(built).write_text(json.dumps({"key": {"gpu_name": "x"}}))
    assert "not a platestream engine record" in stale_reason(built, KEY)


def test_replaced_engine_bytes_are_stale(built: Path) -> None:
    built.write_bytes(b"truncated")
    assert "does not match the sha256" in stale_reason(built, KEY)
    assert stale_reason(built, KEY, verify_bytes=False) is None
