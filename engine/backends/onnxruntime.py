"""ONNX Runtime backend (CPU, or CUDA when onnxruntime-gpu is installed)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from engine.backends.base import TensorSpec
from engine.errors import BackendError, ModelLoadError

__all__ = ["OrtBackend"]

log = logging.getLogger(__name__)

_ORT_DTYPES = {
    "tensor(float)": np.dtype(np.float32),
    "tensor(float16)": np.dtype(np.float16),
    "tensor(uint8)": np.dtype(np.uint8),
    "tensor(int64)": np.dtype(np.int64),
    "tensor(int32)": np.dtype(np.int32),
}


class OrtBackend:
    """One ``onnxruntime.InferenceSession``.

    Args:
        path: the ``.onnx`` file.
        threads: intra-op threads (the core budget); spinning is disabled so idle
            threads do not burn the cores the decoders need.
        providers: ONNX Runtime execution providers, best first.
        graph: the serialized model to run instead of the file's (a changed copy of it, see
            engine.backends.fitted); ``path`` still names it.
    """

    def __init__(self, path: Path, threads: int = 2, providers: list[str] | None = None,
                 graph: bytes | None = None) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, threads)
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
        opts.log_severity_level = 3
        available = ort.get_available_providers()
        wanted = providers or ["CPUExecutionProvider"]
        chosen = [p for p in wanted if p in available] or ["CPUExecutionProvider"]
        try:
            self._sess = ort.InferenceSession(graph or str(path), sess_options=opts,
                                              providers=chosen)
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelLoadError(f"cannot load model {path}: {exc}") from exc
        self.name = f"onnxruntime:{self._sess.get_providers()[0]}"
        self.path = path
        self._inputs = {
            i.name: TensorSpec(
                tuple(d if isinstance(d, int) else None for d in i.shape),
                _ORT_DTYPES.get(i.type, np.dtype(np.float32)),
            )
            for i in self._sess.get_inputs()
        }
        self._outputs = [o.name for o in self._sess.get_outputs()]

    def inputs(self) -> dict[str, TensorSpec]:
        return dict(self._inputs)

    def infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            outs = self._sess.run(self._outputs, feeds)
        except Exception as exc:
            raise BackendError(f"{self.path.name}: inference failed: {exc}") from exc
        return dict(zip(self._outputs, outs, strict=True))

    def close(self) -> None:
        self._sess = None  # type: ignore[assignment]
