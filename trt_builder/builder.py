"""Build one TensorRT engine per ONNX model: dynamic batch profiles, FP16/INT8, a cache.

``build_engines(opts)`` is the whole job. The parts that decide *what* to do
(``validate``, ``plan``) are pure and tested without a GPU; ``_build_one`` is the only code
that talks to TensorRT.

Batch: the OCR's batch is free in its ONNX graph and gets a ``1..max_batch`` profile. The two
detectors were exported at batch 1; ``onnx_batch.make_batch_dynamic`` frees their batch when
the ``onnx`` package is installed and the rewritten graph gives the same results batched as
one by one on ONNX Runtime, otherwise they are built at batch 1 and the reason is logged
(the engine calls the detectors one frame at a time today, so batch 1 costs nothing yet).
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from engine import models
from engine.backends.engine_cache import EngineKey, engine_path, stale_reason, write_meta
from engine.backends.tensorrt import GpuInfo, gpu_info, tensorrt_version
from engine.errors import BackendError, ModelLoadError
from trt_builder import calibrator
from trt_builder.errors import BuildArgumentError, BuildError

__all__ = ["Target", "TARGETS", "BuildOptions", "Planned", "BuildResult", "validate", "plan",
           "build_engines"]

log = logging.getLogger(__name__)

Precision = Literal["fp32", "fp16", "int8"]
MAX_BATCH_LIMIT = 256
VERIFY_SAMPLES = 3  # images used to prove a batch-dynamic rewrite


@dataclass(frozen=True, slots=True)
class Target:
    spec: models.ModelSpec
    role: calibrator.Role


TARGETS: tuple[Target, ...] = (
    Target(models.PLATE_DETECTOR, "plate_detector"),
    Target(models.PLATE_OCR, "plate_ocr"),
    Target(models.VEHICLE_DETECTOR, "vehicle_detector"),
)
TARGET_KEYS = tuple(t.spec.key for t in TARGETS)


@dataclass(frozen=True, slots=True)
class BuildOptions:
    """What ``platestream build-engines`` was asked for (see ``cli.add_build_args``)."""

    models_dir: Path
    out_dir: Path
    fp16: bool = False
    int8: bool = False
    calib_images: Path | None = None
    calib_max: int = 512
    max_batch: int = 8
    workspace_mb: int = 2048
    force: bool = False
    only: tuple[str, ...] = ()

    @property
    def precision(self) -> Precision:
        return "int8" if self.int8 else "fp16" if self.fp16 else "fp32"


@dataclass(frozen=True, slots=True)
class Planned:
    """One engine to produce: its model, where it goes, its cache key and why (re)build."""

    target: Target
    onnx: Path
    engine: Path
    key: EngineKey
    stale: str | None  # None = cached engine is up to date


@dataclass(frozen=True, slots=True)
class BuildResult:
    model: str
    engine: Path
    status: Literal["built", "cached"]
    detail: str

    def line(self) -> str:
        return f"{self.model}: {self.status} {self.engine} ({self.detail})"


def validate(opts: BuildOptions) -> list[Path]:
    """Check ``opts``; return the calibration images (empty unless INT8).

    Raises:
        BuildArgumentError: naming the option, the bad value and what is expected.
    """
    if not 1 <= opts.max_batch <= MAX_BATCH_LIMIT:
        raise BuildArgumentError(
            f"--max-batch must be between 1 and {MAX_BATCH_LIMIT}, got {opts.max_batch}"
        )
    if opts.workspace_mb < 64:
        raise BuildArgumentError(f"--workspace-mb must be >= 64, got {opts.workspace_mb}")
    if opts.calib_max < 1:
        raise BuildArgumentError(f"--calib-max must be >= 1, got {opts.calib_max}")
    unknown = [k for k in opts.only if k not in TARGET_KEYS]
    if unknown:
        raise BuildArgumentError(
            f"--only: unknown model {unknown[0]!r}, expecting one of {', '.join(TARGET_KEYS)}"
        )
    if not opts.models_dir.is_dir():
        raise BuildArgumentError(
            f"--models-dir {opts.models_dir} is not a directory (default: $PLATESTREAM_MODELS, "
            "then ~/.cache/platestream/models; `platestream models fetch` downloads them)"
        )
    for t in _targets(opts):
        problem = models.check_model(t.spec, opts.models_dir, verify_hash=False)
        if problem:
            raise BuildArgumentError(problem)
    if opts.out_dir.exists() and not opts.out_dir.is_dir():
        raise BuildArgumentError(f"--out {opts.out_dir} exists and is not a directory")
    if opts.calib_images is not None and not opts.calib_images.is_dir():
        raise BuildArgumentError(f"--calib-images {opts.calib_images} is not a directory")
    if not opts.int8:
        return []
    if opts.calib_images is None:
        raise BuildArgumentError(
            "--int8 needs --calib-images DIR (real camera images, a few hundred)"
        )
    images = calibrator.list_images(opts.calib_images, opts.calib_max)
    if not images:
        raise BuildArgumentError(
            f"--calib-images {opts.calib_images} has no images "
            f"({', '.join(calibrator.IMAGE_SUFFIXES)})"
        )
    return images


def _targets(opts: BuildOptions) -> list[Target]:
    return [t for t in TARGETS if not opts.only or t.spec.key in opts.only]


def plan(opts: BuildOptions, gpu: GpuInfo, trt_version: str, calib: list[Path]) -> list[Planned]:
    """Which engines exist and are current for this GPU/TensorRT/model, which to (re)build."""
    calib_sha = calibrator.images_digest(calib) if calib else ""
    out = []
    for t in _targets(opts):
        onnx = opts.models_dir / t.spec.filename
        key = EngineKey(
            gpu.name, gpu.compute_capability, trt_version, models.sha256_file(onnx),
            opts.precision, opts.max_batch, calib_sha,
        )
        engine = engine_path(opts.out_dir, onnx)
        stale = "--force" if opts.force else stale_reason(engine, key)
        out.append(Planned(t, onnx, engine, key, stale))
    return out


def build_engines(
    opts: BuildOptions, *, progress: Callable[[BuildResult], None] | None = None
) -> list[BuildResult]:
    """Build (or reuse) every engine ``opts`` asks for; returns one result per model.

    Raises:
        BuildArgumentError: bad options (before anything touches the GPU).
        BuildError: TensorRT or a GPU is missing, or TensorRT failed on a model.
    """
    calib = validate(opts)
    try:
        trt_version = tensorrt_version()
        gpu = gpu_info()
    except BackendError as exc:
        raise BuildError(str(exc)) from exc
    log.info("building for %s (sm %s), TensorRT %s, %s, max batch %d", gpu.name,
             gpu.compute_capability, trt_version, opts.precision, opts.max_batch)
    opts.out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for p in plan(opts, gpu, trt_version, calib):
        if p.stale is None:
            res = BuildResult(p.target.spec.key, p.engine, "cached", "up to date")
        else:
            log.info("%s: building (%s)", p.target.spec.key, p.stale)
            res = _build_one(p, opts, calib)
        if progress:
            progress(res)
        results.append(res)
    return results


def _samples(role: calibrator.Role, opts: BuildOptions, calib: list[Path]) -> list[np.ndarray]:
    """Inputs to verify a batch rewrite: real images when given, else fixed synthetic frames."""
    images = calib or (calibrator.list_images(opts.calib_images, VERIFY_SAMPLES)
                       if opts.calib_images else [])
    if images:
        got = list(itertools.islice(
            calibrator.preprocessed_inputs(role, images[:VERIFY_SAMPLES * 4], opts.models_dir),
            VERIFY_SAMPLES,
        ))
        if len(got) >= 2:
            return got
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (480, 640, 3), np.uint8) for _ in range(VERIFY_SAMPLES)]
    preprocess = calibrator.detector_preprocess(role)
    return [preprocess(f)[0] for f in frames]


def _onnx_for_batch(p: Planned, opts: BuildOptions, calib: list[Path]) -> tuple[bytes, int, str]:
    """The ONNX bytes to parse, the max batch they allow, and a note on how."""
    from trt_builder.onnx_batch import fixed_batch_inputs, make_batch_dynamic

    data = p.onnx.read_bytes()
    if not fixed_batch_inputs(p.onnx):
        return data, opts.max_batch, f"dynamic batch 1..{opts.max_batch}"
    if opts.max_batch == 1:
        return data, 1, "batch 1"
    result = make_batch_dynamic(p.onnx, _samples(p.target.role, opts, calib))
    if result.model is None:
        log.warning("%s: built at batch 1: %s", p.target.spec.key, result.reason)
        return data, 1, f"batch 1 ({result.reason})"
    log.info("%s: %s", p.target.spec.key, result.reason)
    return result.model, opts.max_batch, f"dynamic batch 1..{opts.max_batch} (rewritten)"


def _trt_logger(trt: Any, errors: list[str]) -> Any:
    class _Log(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)

        def log(self, severity: Any, msg: str) -> None:
            if int(severity) <= int(trt.ILogger.ERROR):
                errors.append(msg)
                log.error("tensorrt: %s", msg)
            elif int(severity) == int(trt.ILogger.WARNING):
                log.warning("tensorrt: %s", msg)
            else:
                log.debug("tensorrt: %s", msg)

    return _Log()


def _build_one(p: Planned, opts: BuildOptions, calib: list[Path]) -> BuildResult:
    import tensorrt as trt

    data, max_batch, batch_note = _onnx_for_batch(p, opts, calib)
    errors: list[str] = []
    logger = _trt_logger(trt, errors)
    builder = trt.Builder(logger)
    flags = 0
    if int(trt.__version__.split(".")[0]) < 10:  # explicit batch is the only mode from 10 on
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(data):
        problems = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ModelLoadError(f"TensorRT cannot parse {p.onnx.name}: {problems}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, opts.workspace_mb << 20)
    profile = builder.create_optimization_profile()
    dynamic = {}
    for i in range(network.num_inputs):
        t = network.get_input(i)
        shape = tuple(t.shape)
        if -1 in shape:
            rest = shape[1:]
            if -1 in rest:
                raise BuildError(f"{p.onnx.name}: input {t.name} {shape} has a free non-batch dim")
            dynamic[t.name] = rest
            profile.set_shape(t.name, (1, *rest), (max_batch, *rest), (max_batch, *rest))
    if dynamic:
        config.add_optimization_profile(profile)
    if opts.fp16 or opts.int8:  # INT8 keeps FP16 for the layers it cannot quantise
        if not getattr(builder, "platform_has_fast_fp16", True):  # deprecated in TRT 10
            log.warning("%s: this GPU has no fast FP16; building anyway", p.target.spec.key)
        config.set_flag(trt.BuilderFlag.FP16)
    calib_obj = None
    if opts.int8:
        calib_obj = _int8(trt, builder, config, network, p, opts, calib, dynamic, max_batch)
    try:
        serialized = builder.build_serialized_network(network, config)
    finally:
        if calib_obj is not None:
            calib_obj.free()
    if serialized is None:
        last = errors[-1] if errors else "see the TensorRT log above"
        raise BuildError(f"TensorRT failed to build {p.onnx.name}: {last}")
    tmp = p.engine.with_name(p.engine.name + ".part")
    tmp.write_bytes(bytes(serialized))
    os.replace(tmp, p.engine)
    write_meta(p.engine, p.key,
               {"model": p.onnx.name, "batch": batch_note, "profile_max_batch": max_batch})
    detail = f"{opts.precision}, {batch_note}"
    return BuildResult(p.target.spec.key, p.engine, "built", detail)


def _int8(trt: Any, builder: Any, config: Any, network: Any, p: Planned, opts: BuildOptions,
          calib: list[Path], dynamic: dict[str, tuple[int, ...]], max_batch: int) -> Any:
    if not getattr(builder, "platform_has_fast_int8", True):
        log.warning("%s: this GPU has no fast INT8; building anyway", p.target.spec.key)
    inp = network.get_input(0)
    batch = min(8, max_batch)
    rest = dynamic.get(inp.name) or tuple(inp.shape)[1:]
    shape = (batch, *rest)
    batches: Iterator[np.ndarray] = calibrator.calibration_batches(
        calibrator.preprocessed_inputs(p.target.role, calib, opts.models_dir), batch
    )
    first = next(batches, None)
    if first is None:
        what = "plates found in" if p.target.role == "plate_ocr" else "readable images in"
        raise BuildError(f"--int8: no calibration data for {p.target.spec.key} (no {what} "
                         f"{opts.calib_images}, need at least {batch})")
    dtype = np.dtype(trt.nptype(inp.dtype))
    cache = p.engine.with_name(f"{p.onnx.stem}.{p.key.digest()}.calib")
    calib_obj = calibrator.make_calibrator(
        trt, itertools.chain([first], batches), shape, dtype, cache
    )
    config.set_flag(trt.BuilderFlag.INT8)
    config.int8_calibrator = calib_obj
    if dynamic:  # calibration runs at one shape: a profile with min = opt = max
        cp = builder.create_optimization_profile()
        cp.set_shape(inp.name, shape, shape, shape)
        config.set_calibration_profile(cp)
    return calib_obj
