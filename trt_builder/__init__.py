"""ONNX -> TensorRT engine builder: dynamic batch profiles, FP16/INT8, a per-device cache.

Entry points: ``platestream build-engines`` and ``python -m trt_builder build`` (see
``trt_builder.cli``); the library call is ``trt_builder.builder.build_engines``.
TensorRT is imported only when an engine is actually built.
"""

__all__ = ["builder", "cache", "calibrator", "cli", "errors", "onnx_batch"]
