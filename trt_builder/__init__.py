"""ONNX -> TensorRT engine builder (see the TensorRT issue; not implemented yet)."""
