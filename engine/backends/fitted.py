"""Detector sessions whose input fits the frame's aspect instead of the exported square.

Both detectors are exported for a 416×416 input, but a 16:9 frame letterboxed to 416 fills
416×234 of it: 44 % of the work is spent on grey bands. Convolutional detectors run on any
input that is a multiple of their largest stride, so a copy of the graph with a 256×416 input
does the same work on the picture for 0.6x the pixels (the way Ultralytics' rectangular
inference does it). What has to change besides the input's dims:

- YOLOX (vehicles): nothing; the grid decode runs in Python (engine/vehicles/process.py).
- YOLOv9 end-to-end (plates): its box decoding is inside the graph, with the anchor points,
  the strides and the anchor count of the 416×416 grid as constants. They are recomputed for
  the new grid; a graph holding them in any other form is left square (the check below).

Only ONNX Runtime runs fitted copies (TensorRT engines and Triton models are built for the
square). One session per canvas shape, made on first use: a camera has one shape.

The copies also take the YOLOv8/v9 box head's softmax over the last axis
(``softmax_on_the_last_axis``): the same numbers, 2.4 -> 0.2 ms on a 256×416 input.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Literal, TypeAlias

import numpy as np

from engine.backends.base import Backend
from engine.errors import ModelLoadError
from engine.preprocess import fitted_canvas

__all__ = ["DetectorInput", "FittedInputs", "fitted_graph", "anchor_tables",
           "softmax_on_the_last_axis"]

log = logging.getLogger(__name__)

STRIDES = (8, 16, 32)

DetectorInput: TypeAlias = Literal["fit", "square"]


def anchor_tables(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """YOLOv8/v9 anchor points (1, 2, n) and strides (1, n) of an h×w input, grid by grid."""
    points, strides = [], []
    for s in STRIDES:
        ys, xs = np.meshgrid(np.arange(h // s) + 0.5, np.arange(w // s) + 0.5, indexing="ij")
        points.append(np.stack([xs.ravel(), ys.ravel()]))
        strides.append(np.full(xs.size, s))
    return (np.concatenate(points, 1)[None].astype(np.float32),
            np.concatenate(strides)[None].astype(np.float32))


def fitted_graph(path: Path, canvas: tuple[int, int]) -> bytes:
    """The ONNX model at ``path`` with its (1, 3, S, S) input made (1, 3, height, width).

    Raises ModelLoadError when the graph is not one this module knows how to change.
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    dims = graph.input[0].type.tensor_type.shape.dim
    if len(dims) != 4 or dims[2].dim_value != dims[3].dim_value or not dims[2].dim_value:
        raise ModelLoadError(f"{path.name}: input is not a fixed square, cannot fit it")
    size = dims[2].dim_value
    h, w = canvas
    if h % STRIDES[-1] or w % STRIDES[-1]:
        raise ModelLoadError(f"{path.name}: {h}x{w} is not a multiple of {STRIDES[-1]}")
    points0, strides0 = anchor_tables(size, size)
    points, strides = anchor_tables(h, w)
    n0, n = points0.shape[-1], points.shape[-1]
    for i, init in enumerate(graph.initializer):
        arr = numpy_helper.to_array(init)
        if n0 not in arr.shape and not (arr.ndim == 1 and arr.dtype == np.int64 and n0 in arr):
            continue
        if arr.shape == points0.shape and np.array_equal(arr, points0):
            new = points
        elif arr.shape == strides0.shape and np.array_equal(arr, strides0):
            new = strides
        elif arr.ndim == 1 and arr.dtype == np.int64 and len(arr) <= 8:
            new = np.where(arr == n0, n, arr)  # reshape targets and the anchor count
        else:
            raise ModelLoadError(f"{path.name}: constant {init.name} {arr.shape} depends on "
                                 "the square input in a way this module does not know")
        graph.initializer[i].CopyFrom(numpy_helper.from_array(new, init.name))
    dims[2].dim_value, dims[3].dim_value = h, w
    softmax_on_the_last_axis(graph)
    del graph.value_info[:]  # inferred for the square; ONNX Runtime infers them again
    return model.SerializeToString()


def _attr(node, name: str, default=None):
    from onnx import helper

    return next((helper.get_attribute_value(a) for a in node.attribute if a.name == name),
                default)


def softmax_on_the_last_axis(graph) -> int:
    """Rewrite YOLOv8/v9's distribution focal loss decode in ``graph`` (in place); return how
    many were rewritten (0 for a graph without it).

    The export computes Transpose(0, 2, 1, 3) -> Softmax(axis 1) -> Conv with 1×16×1×1
    weights 0..15 (the expected distance over 16 bins). ONNX Runtime transposes around a
    softmax that is not on the last axis, which took 2.4 ms of a 256×416 plate detector run
    (10 %). Transpose(0, 1, 3, 2) -> Softmax(last axis) -> MatMul with the 16×1 weights sums
    the same products (equal outputs, tests/engine/test_fitted.py) in 0.2 ms; the result is
    (1, 4, n, 1) instead of (1, 1, 4, n), which the Reshape after it takes as well.
    """
    from onnx import helper, numpy_helper

    producers = {out: node for node in graph.node for out in node.output}
    uses: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1
    weights = {init.name: init for init in graph.initializer}
    done = 0
    for i, conv in enumerate(list(graph.node)):
        if conv.op_type != "Conv" or len(conv.input) != 2 or conv.input[1] not in weights:
            continue
        softmax = producers.get(conv.input[0])
        transpose = producers.get(softmax.input[0]) if softmax is not None else None
        if (softmax is None or softmax.op_type != "Softmax" or _attr(softmax, "axis") != 1
                or transpose is None or transpose.op_type != "Transpose"
                or list(_attr(transpose, "perm", [])) != [0, 2, 1, 3]
                or uses.get(softmax.output[0]) != 1 or uses.get(transpose.output[0]) != 1
                or uses.get(conv.input[1]) != 1 or int(_attr(conv, "group", 1)) != 1):
            continue
        # the weights only now: the other ~180 convolutions are not copied out for nothing
        w = numpy_helper.to_array(weights[conv.input[1]])
        if w.ndim != 4 or w.shape[0] != 1 or w.shape[2:] != (1, 1):
            continue
        for node, attr, value in ((transpose, "perm", [0, 1, 3, 2]), (softmax, "axis", 3)):
            del node.attribute[:]
            node.attribute.append(helper.make_attribute(attr, value))
        weights[conv.input[1]].CopyFrom(
            numpy_helper.from_array(w.reshape(w.shape[1], 1), conv.input[1]))
        graph.node.remove(conv)
        graph.node.insert(i, helper.make_node("MatMul", list(conv.input), list(conv.output),
                                              name=conv.name))
        done += 1
    return done


class FittedInputs:
    """A detector's sessions by canvas shape: the square one it was loaded with, plus a
    fitted copy per (height, width) asked for, made by ``make`` on first use.

    A copy that cannot be made (an unknown graph) is logged once and the square is used for
    that shape from then on, so ``canvas`` must be asked before preprocessing.
    """

    def __init__(self, square: Backend, size: int,
                 make: Callable[[tuple[int, int]], Backend], name: str = "detector") -> None:
        self.size = size
        self.name = name
        self._make = make
        self._by_shape: dict[tuple[int, int], Backend | None] = {(size, size): square}
        self._lock = threading.Lock()

    def for_frame(self, h: int, w: int) -> tuple[tuple[int, int], Backend]:
        """(canvas, session) for an h×w frame: its fitted canvas, or the square."""
        return self.session(fitted_canvas(h, w, self.size))

    def session(self, canvas: tuple[int, int]) -> tuple[tuple[int, int], Backend]:
        """(the canvas to preprocess to, its session): ``canvas`` or the square."""
        backend = self._by_shape.get(canvas, ...)
        if backend is ...:
            with self._lock:
                backend = self._by_shape.get(canvas, ...)
                if backend is ...:
                    backend = self._by_shape[canvas] = self._build(canvas)
        if backend is None:
            square = (self.size, self.size)
            return square, self._by_shape[square]  # type: ignore[return-value]
        return canvas, backend

    def _build(self, canvas: tuple[int, int]) -> Backend | None:
        try:
            backend = self._make(canvas)
        except Exception as exc:  # any failure leaves the square, which works
            log.warning("engine: cannot fit the %s to %dx%d, using %dx%d: %s",
                        self.name, canvas[1], canvas[0], self.size, self.size, exc)
            return None
        log.info("engine: %s input %dx%d for frames of this shape", self.name, canvas[1],
                 canvas[0])
        return backend
