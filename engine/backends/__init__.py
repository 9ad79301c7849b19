"""Inference backends behind one small protocol."""

from __future__ import annotations

from pathlib import Path

from engine.backends.base import Backend, TensorSpec
from engine.errors import BackendError

__all__ = ["Backend", "TensorSpec", "open_backend", "ENGINE_SUFFIXES"]

ENGINE_SUFFIXES = (".engine", ".plan")


def open_backend(path: Path, threads: int = 2, providers: list[str] | None = None) -> Backend:
    """Open ``path`` with the backend its suffix calls for.

    ``.onnx`` -> ONNX Runtime (``providers``, CPU by default); ``.engine`` / ``.plan`` ->
    TensorRT (a serialized engine built by ``platestream build-engines``; ``threads`` and
    ``providers`` do not apply).
    """
    path = Path(path)
    if path.suffix == ".onnx":
        from engine.backends.onnxruntime import OrtBackend

        return OrtBackend(path, threads=threads, providers=providers)
    if path.suffix in ENGINE_SUFFIXES:
        from engine.backends.tensorrt import TrtBackend

        return TrtBackend(path)
    raise BackendError(
        f"{path}: no backend for '{path.suffix}' files (expected .onnx, .engine or .plan)"
    )
