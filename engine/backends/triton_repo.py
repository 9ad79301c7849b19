"""``platestream models export-triton DIR``: a Triton model repository for our three models.

Layout (what ``tritonserver --model-repository DIR`` loads)::

    DIR/plate_detector/config.pbtxt     DIR/plate_detector/1/model.onnx   (or model.plan)
    DIR/plate_ocr/...                   DIR/vehicle_detector/...
    DIR/platestream-export.json         what was written and why

Model names are the engine's model keys, which is what ``engine.backend: triton`` asks for.
Each model runs on Triton's ONNX Runtime backend by default, or on its TensorRT backend when
``platestream build-engines`` built an engine for it (``engines_dir``): the plan is copied
as is, so it must come from the same TensorRT version as the server (the version is recorded
in the config's parameters).

Batching, per model:
- plate_ocr: its graph has a free batch: ``max_batch_size`` plus Triton's dynamic batcher,
  which merges the crops of many nodes into one call.
- vehicle_detector: exported at batch 1; its graph is rewritten for a free batch (the same
  verified rewrite as the TensorRT builder, needs the ``onnx`` package) and then batched
  like the OCR. Without ``onnx`` it is served at batch 1.
- plate_detector: its in-graph NMS emits ``[n, 7]`` rows for the whole batch, not one
  tensor per image, so Triton cannot split a merged batch back per request: it is served
  without batching (``max_batch_size: 0``); several instances run requests in parallel.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from engine import models
from engine.errors import ModelLoadError

__all__ = ["ExportedModel", "export_triton", "TRITON_MODELS"]

log = logging.getLogger(__name__)

TRITON_MODELS = (models.PLATE_DETECTOR, models.PLATE_OCR, models.VEHICLE_DETECTOR)
_UNSPLITTABLE = {models.PLATE_DETECTOR.key: "its in-graph NMS returns one [n, 7] tensor for "
                 "the whole batch, which Triton cannot split back per request"}
_TYPES = {"tensor(float)": "TYPE_FP32", "tensor(float16)": "TYPE_FP16",
          "tensor(uint8)": "TYPE_UINT8", "tensor(int64)": "TYPE_INT64",
          "tensor(int32)": "TYPE_INT32"}
MANIFEST = "platestream-export.json"


@dataclass(frozen=True, slots=True)
class ExportedModel:
    name: str
    platform: str          # onnxruntime_onnx | tensorrt_plan
    file: str              # path relative to the repository
    max_batch_size: int    # 0: no batching
    preferred_batch_sizes: tuple[int, ...]
    instances: int
    kind: str              # KIND_GPU | KIND_CPU
    note: str


@dataclass(frozen=True, slots=True)
class _Tensor:
    name: str
    data_type: str
    dims: tuple[int, ...]


def _io(path: Path) -> tuple[list[_Tensor], list[_Tensor]]:
    import onnxruntime as ort

    try:
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's own error types
        raise ModelLoadError(f"cannot load model {path}: {exc}") from exc

    def tensors(args) -> list[_Tensor]:  # noqa: ANN001 - onnxruntime NodeArgs
        return [_Tensor(a.name, _TYPES.get(a.type, "TYPE_FP32"),
                        tuple(d if isinstance(d, int) else -1 for d in a.shape)) for a in args]

    return tensors(sess.get_inputs()), tensors(sess.get_outputs())


def _preferred(max_batch: int) -> tuple[int, ...]:
    return tuple(sorted({b for b in (max_batch // 4, max_batch // 2, max_batch) if b >= 2}))


def _pbtxt_tensors(key: str, tensors: Sequence[_Tensor], batched: bool) -> str:
    out = []
    for t in tensors:
        dims = t.dims[1:] if batched else t.dims
        out.append(f'  {{\n    name: "{t.name}"\n    data_type: {t.data_type}\n'
                   f'    dims: [ {", ".join(str(d) for d in dims)} ]\n  }}')
    return f"{key} [\n" + ",\n".join(out) + "\n]\n"


def _config(m: ExportedModel, inputs: Sequence[_Tensor], outputs: Sequence[_Tensor],
            queue_delay_us: int, params: dict[str, str]) -> str:
    batched = m.max_batch_size > 0
    text = [f"# written by `platestream models export-triton`: {m.note}\n",
            f'name: "{m.name}"\n', f'platform: "{m.platform}"\n',
            f"max_batch_size: {m.max_batch_size}\n",
            _pbtxt_tensors("input", inputs, batched), _pbtxt_tensors("output", outputs, batched)]
    if batched:
        sizes = ", ".join(map(str, m.preferred_batch_sizes))
        text.append(f"dynamic_batching {{\n  preferred_batch_size: [ {sizes} ]\n"
                    f"  max_queue_delay_microseconds: {queue_delay_us}\n}}\n")
    text.append(f"instance_group [\n  {{\n    count: {m.instances}\n    kind: {m.kind}\n  }}\n]\n")
    for k, v in params.items():
        text.append(f'parameters {{\n  key: "{k}"\n  value: {{ string_value: "{v}" }}\n}}\n')
    return "".join(text)


def _batch_free_onnx(onnx: Path) -> tuple[bytes | None, str]:
    """The vehicle detector rewritten for a free batch (verified), or None and why."""
    import importlib.util

    if importlib.util.find_spec("onnx") is None:
        return None, "served at batch 1: the `onnx` package is needed to free its batch " \
                     "(pip install onnx)"
    import numpy as np

    from trt_builder.calibrator import detector_preprocess
    from trt_builder.onnx_batch import make_batch_dynamic

    rng = np.random.default_rng(0)
    prep = detector_preprocess("vehicle_detector")
    samples = [prep(rng.integers(0, 256, (480, 640, 3), np.uint8))[0] for _ in range(3)]
    result = make_batch_dynamic(onnx, samples)
    if result.model is None:
        return None, f"served at batch 1: {result.reason}"
    return result.model, f"batch freed and verified ({result.reason})"


def export_triton(
    out: Path,
    models_dir: Path,
    *,
    engines_dir: Path | None = None,
    device: Literal["gpu", "cpu"] = "gpu",
    instances: int = 1,
    max_batch: int = 16,
    queue_delay_us: int = 2000,
    force: bool = False,
) -> list[ExportedModel]:
    """Write the repository to ``out`` (see the module doc); returns what was written.

    Raises:
        ModelLoadError: a model file is missing or unreadable.
        FileExistsError: ``out`` holds a model directory already and ``force`` is off.
    """
    from engine.models import sha256_file

    kind = "KIND_GPU" if device == "gpu" else "KIND_CPU"
    onnx = {s.key: models.model_path(s, models_dir) for s in TRITON_MODELS}
    if not force:
        taken = [s.key for s in TRITON_MODELS if (out / s.key).exists()]
        if taken:
            raise FileExistsError(f"{out}: {', '.join(taken)} already there (use --force to "
                                  "replace them)")
    out.mkdir(parents=True, exist_ok=True)
    written: list[ExportedModel] = []
    for spec in TRITON_MODELS:
        src = onnx[spec.key]
        inputs, outputs = _io(src)
        params = {"platestream_source": src.name, "platestream_sha256": sha256_file(src)}
        fixed = bool(inputs) and inputs[0].dims[0] == 1
        engine = _engine_for(engines_dir, src, params["platestream_sha256"])
        model_dir = out / spec.key
        if model_dir.exists():
            shutil.rmtree(model_dir)
        (model_dir / "1").mkdir(parents=True)
        if engine is not None:
            path, meta = engine
            built_batch = int(meta.get("key", {}).get("max_batch", 1) or 1)
            platform, file = "tensorrt_plan", "1/model.plan"
            shutil.copyfile(path, model_dir / file)
            params["tensorrt_version"] = str(meta.get("key", {}).get("tensorrt", "?"))
            params["built_for_gpu"] = str(meta.get("key", {}).get("gpu_name", "?"))
            if spec.key in _UNSPLITTABLE or built_batch == 1:
                if built_batch > 1:  # a free batch dim, but each request sends its own 1
                    inputs = [_Tensor(t.name, t.data_type, (-1, *t.dims[1:])) for t in inputs]
                mb, note = 0, (f"TensorRT plan, no batching: {_UNSPLITTABLE[spec.key]}"
                               if spec.key in _UNSPLITTABLE else "TensorRT plan built at batch 1")
            else:
                mb, note = built_batch, f"TensorRT plan, batch 1..{built_batch}"
        else:
            platform, file = "onnxruntime_onnx", "1/model.onnx"
            data: bytes | None = None
            if spec.key in _UNSPLITTABLE:
                mb, note = 0, f"ONNX Runtime, no batching: {_UNSPLITTABLE[spec.key]}"
            elif fixed:
                data, why = _batch_free_onnx(src)
                mb, note = (max_batch, f"ONNX Runtime, {why}") if data else (0, why)
                if data:
                    inputs = [_Tensor(t.name, t.data_type, (-1, *t.dims[1:])) for t in inputs]
                    outputs = [_Tensor(t.name, t.data_type, (-1, *t.dims[1:])) for t in outputs]
            else:
                mb, note = max_batch, "ONNX Runtime, batch free in the graph"
            if data is None:
                shutil.copyfile(src, model_dir / file)
            else:
                (model_dir / file).write_bytes(data)
        m = ExportedModel(spec.key, platform, f"{spec.key}/{file}", mb,
                          _preferred(mb) if mb else (), instances, kind, note)
        (model_dir / "config.pbtxt").write_text(_config(m, inputs, outputs, queue_delay_us,
                                                        params))
        written.append(m)
        log.debug("export-triton: %s: %s", spec.key, note)
    (out / MANIFEST).write_text(json.dumps(
        {"models": [asdict(m) for m in written], "models_dir": str(models_dir),
         "engines_dir": str(engines_dir) if engines_dir else None}, indent=2) + "\n")
    return written


def _engine_for(engines_dir: Path | None, onnx: Path, sha256: str) -> tuple[Path, dict] | None:
    """A TensorRT engine built from ``onnx`` (these bytes) by ``build-engines``, with its
    record; None when there is none (the model then goes to ONNX Runtime)."""
    if engines_dir is None:
        return None
    from engine.backends.engine_cache import engine_path, read_meta

    path = engine_path(Path(engines_dir), onnx)
    if not path.is_file():
        return None
    meta = read_meta(path)
    if meta is None:
        log.warning("export-triton: %s has no readable record (.engine.json): not used", path)
        return None
    if meta.get("key", {}).get("model_sha256") != sha256:
        log.warning("export-triton: %s was built from other model bytes: not used", path)
        return None
    return path, meta
