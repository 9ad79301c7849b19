"""A stand-in for TensorRT and cuda-python, for exercising TrtBackend without a GPU.

"Device" memory is host memory (ctypes buffers at real addresses), copies are memmove, and
an "engine" file is JSON naming an ONNX model that ONNX Runtime executes. Everything
TrtBackend does with addresses, shapes, profiles, the data-dependent output allocator and
the copies back is therefore really done and checked; only the GPU is simulated.
"""

from __future__ import annotations

import ctypes
import enum
import importlib.machinery
import json
import types
from pathlib import Path

import numpy as np
import onnxruntime as ort


class Err(enum.IntEnum):
    cudaSuccess = 0
    cudaErrorMemoryAllocation = 2


class FakeCudart(types.ModuleType):
    def __init__(self) -> None:
        super().__init__("cuda.bindings.runtime")
        self.live: dict[int, ctypes.Array] = {}
        self.cudaError_t = Err
        self.cudaMemcpyKind = types.SimpleNamespace(
            cudaMemcpyHostToDevice=1, cudaMemcpyDeviceToHost=2
        )

    def _malloc(self, n: int):
        buf = (ctypes.c_uint8 * int(n))()
        self.live[ctypes.addressof(buf)] = buf
        return Err.cudaSuccess, ctypes.addressof(buf)

    def cudaMalloc(self, n):
        return self._malloc(n)

    def cudaMallocHost(self, n):
        return self._malloc(n)

    def _free(self, ptr):
        self.live.pop(int(ptr))
        return (Err.cudaSuccess,)

    cudaFree = cudaFreeHost = _free

    def cudaMemcpyAsync(self, dst, src, n, kind, stream):
        ctypes.memmove(int(dst), int(src), int(n))
        return (Err.cudaSuccess,)

    def cudaMemcpy(self, dst, src, n, kind):
        return self.cudaMemcpyAsync(dst, src, n, kind, None)

    def cudaStreamCreate(self):
        return Err.cudaSuccess, 7

    def cudaStreamDestroy(self, s):
        return (Err.cudaSuccess,)

    def cudaStreamSynchronize(self, s):
        return (Err.cudaSuccess,)

    def cudaGetDeviceCount(self):
        return Err.cudaSuccess, 1

    def cudaGetDeviceProperties(self, i):
        return Err.cudaSuccess, types.SimpleNamespace(
            name=b"Fake GPU", major=8, minor=7, totalGlobalMem=8 << 30
        )


def write_engine(path: Path, onnx: Path, max_batch: int) -> Path:
    path.write_text(json.dumps({"onnx": str(onnx), "max_batch": max_batch}))
    return path


class _IOutputAllocator:
    def __init__(self) -> None:
        pass


class _Engine:
    def __init__(self, spec: dict) -> None:
        self.sess = ort.InferenceSession(spec["onnx"], providers=["CPUExecutionProvider"])
        self.max_batch = spec["max_batch"]
        self.inputs = self.sess.get_inputs()
        self.outputs = self.sess.get_outputs()
        self.names = [i.name for i in self.inputs] + [o.name for o in self.outputs]
        self.num_io_tensors = len(self.names)
        self.num_optimization_profiles = 1

    def _meta(self, name):
        return next(t for t in self.inputs + self.outputs if t.name == name)

    def get_tensor_name(self, i):
        return self.names[i]

    def get_tensor_mode(self, name):
        return "in" if name in [i.name for i in self.inputs] else "out"

    def get_tensor_dtype(self, name):
        t = self._meta(name).type
        return np.dtype(np.uint8 if "uint8" in t else np.float32)

    def get_tensor_shape(self, name):
        return tuple(d if isinstance(d, int) else -1 for d in self._meta(name).shape)

    def get_tensor_profile_shape(self, name, profile):
        rest = self.get_tensor_shape(name)[1:]
        return [(1, *rest), (self.max_batch, *rest), (self.max_batch, *rest)]

    def create_execution_context(self):
        return _Context(self)


class _Context:
    def __init__(self, engine: _Engine) -> None:
        self.e = engine
        self.shapes: dict[str, tuple] = {}
        self.addr: dict[str, int] = {}
        self.allocators: dict = {}

    def set_input_shape(self, name, shape):
        self.shapes[name] = tuple(shape)
        return True

    def set_tensor_address(self, name, ptr):
        self.addr[name] = int(ptr)
        return True

    def set_output_allocator(self, name, alloc):
        self.allocators[name] = alloc

    def get_max_output_size(self, name):
        return 0  # no bound: the allocator has to grow its buffer

    def _batch(self):
        return next(iter(self.shapes.values()))[0]

    def get_tensor_shape(self, name):
        if name in self.shapes:
            return self.shapes[name]
        shape = list(self.e.get_tensor_shape(name))
        if shape[0] == -1 and shape[1:] != [7]:  # batch-major output
            shape[0] = self._batch()
        return tuple(shape)

    def execute_async_v3(self, stream):
        feeds = {}
        for i in self.e.inputs:
            dt = self.e.get_tensor_dtype(i.name)
            shape = self.shapes[i.name]
            n = int(np.prod(shape)) * dt.itemsize
            raw = (ctypes.c_uint8 * n).from_address(self.addr[i.name])
            feeds[i.name] = np.frombuffer(raw, dt).reshape(shape).copy()
        outs = self.e.sess.run(None, feeds)
        for o, arr in zip(self.e.outputs, outs, strict=True):
            arr = np.ascontiguousarray(arr, np.float32)
            alloc = self.allocators.get(o.name)
            if alloc is not None:
                ptr = alloc.reallocate_output_async(o.name, 0, arr.nbytes, 256, stream)
                alloc.notify_shape(o.name, arr.shape)
            else:
                assert tuple(arr.shape) == self.get_tensor_shape(o.name), o.name
                ptr = self.addr[o.name]
            ctypes.memmove(ptr, arr.ctypes.data, arr.nbytes)
        return True


def fake_tensorrt() -> types.ModuleType:
    trt = types.ModuleType("tensorrt")
    trt.__spec__ = importlib.machinery.ModuleSpec("tensorrt", None)
    trt.__version__ = "10.3.0"
    trt.Logger = type("Logger", (), {"WARNING": 2, "__init__": lambda self, s=2: None})
    trt.TensorIOMode = types.SimpleNamespace(INPUT="in", OUTPUT="out")
    trt.nptype = lambda dt: dt
    trt.IOutputAllocator = _IOutputAllocator

    class Runtime:
        def __init__(self, logger) -> None:
            pass

        def deserialize_cuda_engine(self, data: bytes):
            try:
                return _Engine(json.loads(data))
            except ValueError:
                return None

    trt.Runtime = Runtime
    return trt


def install(monkeypatch) -> FakeCudart:
    """Put the fakes in sys.modules; returns the fake cudart (its ``live`` allocations)."""
    import sys

    cudart = FakeCudart()
    cuda = types.ModuleType("cuda")
    cuda.__spec__ = importlib.machinery.ModuleSpec("cuda", None)
    bindings = types.ModuleType("cuda.bindings")
    bindings.runtime = cudart
    cuda.bindings = bindings
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt())
    monkeypatch.setitem(sys.modules, "cuda", cuda)
    monkeypatch.setitem(sys.modules, "cuda.bindings", bindings)
    monkeypatch.setitem(sys.modules, "cuda.bindings.runtime", cudart)
    return cudart
