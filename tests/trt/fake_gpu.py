"""A stand-in for TensorRT and cuda-python, for exercising TrtBackend without a GPU.

"Device" memory is host memory (ctypes buffers at real addresses), copies are memmove, and
an "engine" file is JSON naming an ONNX model that ONNX Runtime executes. Everything
TrtBackend does with addresses, shapes, profiles, the data-dependent output allocator and
the copies back is therefore really done and checked; only the GPU is simulated.
"""

from __future__ import annotations

import base64
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
        model = base64.b64decode(spec["onnx_b64"]) if "onnx_b64" in spec else spec["onnx"]
        self.sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
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
    _add_builder(trt)
    return trt


# --- the builder side: records what the builder asks for, "builds" a runnable fake engine ---


class _Tensor(types.SimpleNamespace):
    pass


class _Network:
    def __init__(self) -> None:
        self.inputs: list[_Tensor] = []
        self.onnx = b""

    @property
    def num_inputs(self) -> int:
        return len(self.inputs)

    def get_input(self, i):
        return self.inputs[i]


class _Parser:
    def __init__(self, network: _Network, logger) -> None:
        self.network = network
        self.num_errors = 0

    def parse(self, data: bytes) -> bool:
        try:
            sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
        except Exception:
            self.num_errors = 1
            return False
        self.network.onnx = data
        for i in sess.get_inputs():
            shape = tuple(d if isinstance(d, int) else -1 for d in i.shape)
            dt = np.dtype(np.uint8 if "uint8" in i.type else np.float32)
            self.network.inputs.append(_Tensor(name=i.name, shape=shape, dtype=dt))
        return True

    def get_error(self, i):
        return "In node 0: not an ONNX model"


class _Profile:
    def __init__(self) -> None:
        self.shapes: dict[str, tuple] = {}

    def set_shape(self, name, lo, opt, hi):
        self.shapes[name] = (tuple(lo), tuple(opt), tuple(hi))


class _Config:
    def __init__(self) -> None:
        self.flags: list[str] = []
        self.profiles: list[_Profile] = []
        self.pool: dict = {}
        self.int8_calibrator = None
        self.calibration_profile = None

    def set_memory_pool_limit(self, pool, size):
        self.pool[pool] = size

    def set_flag(self, flag):
        self.flags.append(flag)

    def add_optimization_profile(self, p):
        self.profiles.append(p)
        return len(self.profiles) - 1

    def set_calibration_profile(self, p):
        self.calibration_profile = p


BUILDS: list[dict] = []  # one record per build_serialized_network call


def _add_builder(trt) -> None:
    trt.ILogger = type("ILogger", (), {"ERROR": 1, "WARNING": 2, "__init__": lambda s: None})
    trt.OnnxParser = _Parser
    trt.BuilderFlag = types.SimpleNamespace(FP16="fp16", INT8="int8")
    trt.MemoryPoolType = types.SimpleNamespace(WORKSPACE="workspace")
    trt.NetworkDefinitionCreationFlag = types.SimpleNamespace(EXPLICIT_BATCH=0)
    trt.IInt8EntropyCalibrator2 = type(
        "IInt8EntropyCalibrator2", (), {"__init__": lambda s: None}
    )

    class Builder:
        def __init__(self, logger) -> None:
            pass

        def create_network(self, flags):
            return _Network()

        def create_builder_config(self):
            return _Config()

        def create_optimization_profile(self):
            return _Profile()

        def build_serialized_network(self, network: _Network, config: _Config):
            record = {"flags": list(config.flags), "profiles": [p.shapes for p in
                                                                config.profiles],
                      "batches": []}
            cal = config.int8_calibrator
            if cal is not None:  # what TensorRT does: pull batches until None
                record["calibration_profile"] = config.calibration_profile
                record["calibration_shape"] = None
                inp = network.inputs[0]
                while (ptrs := cal.get_batch([inp.name])) is not None:
                    shape = config.calibration_profile.shapes[inp.name][1] if (
                        config.calibration_profile) else inp.shape
                    n = int(np.prod(shape)) * inp.dtype.itemsize
                    raw = (ctypes.c_uint8 * n).from_address(ptrs[0])
                    record["batches"].append(np.frombuffer(raw, inp.dtype).reshape(shape).copy())
                cal.write_calibration_cache(b"calibration table")
            BUILDS.append(record)
            max_batch = max((s[2][0] for p in config.profiles for s in p.shapes.values()),
                            default=1)
            return json.dumps({"onnx_b64": base64.b64encode(network.onnx).decode(),
                               "max_batch": max_batch}).encode()

    trt.Builder = Builder


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
