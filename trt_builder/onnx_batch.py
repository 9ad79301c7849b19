"""Make a fixed batch-1 ONNX graph batch-dynamic, and prove the result on ONNX Runtime.

The plate detector and the YOLOX vehicle detector were exported with a fixed ``[1, 3, 416,
416]`` input, and their graphs hard-code the batch in a few ``Reshape`` shapes
(``[1, 65, -1]``, ``[1, 85, -1]``). A TensorRT profile with a free batch needs those dims
free too, so this module:

1. renames input/output dim 0 from ``1`` to ``batch``;
2. rewrites a leading ``1`` in every constant ``Reshape`` shape to ``0`` ("copy the input's
   dim"), which is the batch when the reshaped tensor is batch-major;
3. runs the rewritten graph on ONNX Runtime (CPU) with a batch of different inputs and
   checks that it gives exactly what the original gives image by image. Only a graph that
   passes is used; otherwise the caller builds at batch 1 and says why.

The plate detector's in-graph NMS emits rows ``[batch_idx, x1, y1, x2, y2, class, score]``:
with a batch those rows carry the image index, which the check compares too.

Needs the ``onnx`` package (``pip install onnx``); without it the caller builds at batch 1.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from engine.errors import ModelLoadError

__all__ = ["DynamicBatch", "make_batch_dynamic", "fixed_batch_inputs"]

log = logging.getLogger(__name__)


class DynamicBatch:
    """Result of a rewrite: ``model`` (serialized ONNX bytes) or None, and why."""

    def __init__(self, model: bytes | None, reason: str) -> None:
        self.model = model
        self.reason = reason


def fixed_batch_inputs(path: Path) -> list[str]:
    """Names of the inputs whose batch dim is fixed (ONNX Runtime's view, no onnx needed)."""
    import onnxruntime as ort

    try:
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ModelLoadError(f"{path} is not a loadable ONNX model: {exc}") from exc
    return [i.name for i in sess.get_inputs() if i.shape and isinstance(i.shape[0], int)]


def _rewrite(path: Path) -> tuple[bytes, int]:
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    g = model.graph
    for v in list(g.input) + list(g.output):
        dims = v.type.tensor_type.shape.dim
        if dims and dims[0].HasField("dim_value") and dims[0].dim_value == 1:
            dims[0].dim_param = "batch"
    inits = {i.name: i for i in g.initializer}
    consts = {
        n.output[0]: a for n in g.node if n.op_type == "Constant"
        for a in n.attribute if a.name == "value"
    }
    rewritten = 0
    for node in g.node:
        if node.op_type != "Reshape" or len(node.input) < 2:
            continue
        name = node.input[1]
        holder = inits.get(name) or (consts[name].t if name in consts else None)
        if holder is None:
            continue
        shape = numpy_helper.to_array(holder).copy()
        if shape.ndim == 1 and len(shape) and shape[0] == 1:
            shape[0] = 0
            holder.CopyFrom(numpy_helper.from_array(shape, holder.name))
            rewritten += 1
    del g.value_info[:]  # stale batch-1 shapes; runtimes re-infer them
    return model.SerializeToString(), rewritten


def _same(single: list[np.ndarray], batched: np.ndarray, nms_rows: bool) -> str | None:
    if nms_rows:  # rows [batch_idx, x1, y1, x2, y2, class, score], per image
        for i, one in enumerate(single):
            rows = batched[batched[:, 0] == i]
            if rows.shape != one.shape or not np.allclose(rows[:, 1:], one[:, 1:], atol=1e-3):
                return f"image {i}: {len(one)} rows alone, {len(rows)} in the batch"
        return None
    want = np.concatenate(single)
    if want.shape != batched.shape:
        return f"batched output shape {batched.shape}, expected {want.shape}"
    err = float(np.abs(want - batched).max()) if want.size else 0.0
    return None if err <= 1e-3 else f"batched output differs by {err:.3g}"


def make_batch_dynamic(path: Path, samples: Sequence[np.ndarray]) -> DynamicBatch:
    """Rewrite ``path`` for a free batch and verify it on ``samples``.

    Args:
        path: an ONNX model with one input whose batch dim is fixed at 1.
        samples: at least two preprocessed inputs, each shaped like the model's input
            (batch 1); real images make the check meaningful (NMS keeps some boxes).

    Returns:
        DynamicBatch with the verified model bytes, or with None and the reason.
    """
    if importlib.util.find_spec("onnx") is None:
        return DynamicBatch(None, "the onnx package is not installed (pip install onnx)")
    if len(samples) < 2:
        return DynamicBatch(None, "need at least two sample inputs to verify a batch")
    import onnxruntime as ort

    try:
        data, n = _rewrite(path)
        orig = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        new = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
        inp = orig.get_inputs()[0].name
        nms_rows = [o.shape[-1] for o in orig.get_outputs()] == [7] and not isinstance(
            orig.get_outputs()[0].shape[0], int
        )
        singles = [orig.run(None, {inp: s}) for s in samples]
        batched = new.run(None, {inp: np.concatenate(list(samples))})
    except Exception as exc:  # onnx/onnxruntime raise many untyped errors
        return DynamicBatch(None, f"rewritten graph does not run with a batch: {exc}")
    for k, out in enumerate(batched):
        problem = _same([s[k] for s in singles], out, nms_rows)
        if problem:
            return DynamicBatch(None, f"rewritten graph is not batch-safe: {problem}")
    return DynamicBatch(
        data, f"batch made dynamic ({n} Reshape shapes rewritten), verified on "
        f"{len(samples)} images with ONNX Runtime"
    )
