"""Inference backends behind one small protocol."""

from __future__ import annotations

from pathlib import Path

from engine.backends.base import Backend, TensorSpec
from engine.errors import BackendError

__all__ = ["Backend", "TensorSpec", "open_backend"]


def open_backend(path: Path, threads: int = 2, providers: list[str] | None = None) -> Backend:
    """Open ``path`` with the backend its suffix calls for (``.onnx`` -> ONNX Runtime)."""
    if path.suffix == ".onnx":
        from engine.backends.onnxruntime import OrtBackend

        return OrtBackend(path, threads=threads, providers=providers)
    raise BackendError(f"{path}: no backend for '{path.suffix}' files (expected .onnx)")
