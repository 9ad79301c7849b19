"""TensorRT backend: a serialized ``.engine`` run with cuda-python (cuda.bindings) memory.

Follows NVIDIA's ``samples/python/common_runtime.py``: tensors are found by name, device
buffers are allocated once (at the profile's largest shapes), one ``_check`` turns
cuda-python's ``(err, *result)`` tuples into exceptions, one call is "copy in, execute, copy
out, synchronise once", outputs are ``.copy()``-ed because the buffers are reused, and
``close()`` frees memory explicitly (``__del__`` is not guaranteed to run).

Inputs are copied to the device straight from the caller's array: no per-call host copy
into a staging buffer. Outputs land in pinned host buffers (fast, truly asynchronous D2H).
Outputs whose size depends on the data (the plate detector's in-graph NMS) go through an
``IOutputAllocator`` that reuses one device buffer and only grows it when TensorRT asks.

Nothing here imports TensorRT or cuda-python at module import time, so the module (and the
probes below) can be used on machines without a GPU.
"""

from __future__ import annotations

import ctypes
import importlib.util
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.backends.base import TensorSpec
from engine.errors import BackendError, ModelLoadError

__all__ = [
    "TrtBackend",
    "GpuInfo",
    "TENSORRT_MISSING",
    "CUDA_PYTHON_MISSING",
    "gpu_info",
    "tensorrt_version",
    "cuda_check",
]

log = logging.getLogger(__name__)

TENSORRT_MISSING = (
    "TensorRT is not installed (pip install platestream[tensorrt] on a machine with an "
    "NVIDIA GPU)"
)
CUDA_PYTHON_MISSING = (
    "cuda-python is not installed (pip install platestream[tensorrt] on a machine with an "
    "NVIDIA GPU)"
)


@dataclass(frozen=True, slots=True)
class GpuInfo:
    """The CUDA device engines are built for and run on (device 0)."""

    name: str
    compute_capability: str  # "8.7"
    memory_mb: int


def _cudart() -> Any:
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        try:  # cuda-python < 12.6 spelled it ``from cuda import cudart``
            from cuda import cudart  # type: ignore[no-redef]
        except ImportError as exc:
            raise BackendError(CUDA_PYTHON_MISSING) from exc
    return cudart


def cuda_check(result: Any) -> Any:
    """Unwrap a cuda-python ``(err, *values)`` tuple; raise BackendError on a CUDA error."""
    err, values = result[0], result[1:]
    if int(err) != 0:
        raise BackendError(f"CUDA error {int(err)} ({getattr(err, 'name', err)})")
    if not values:
        return None
    return values[0] if len(values) == 1 else values


def gpu_info() -> GpuInfo:
    """Device 0 as CUDA sees it; BackendError saying why when there is no usable GPU."""
    cudart = _cudart()
    err, count = cudart.cudaGetDeviceCount()
    if int(err) != 0 or count == 0:
        why = getattr(err, "name", str(err)) if int(err) != 0 else "0 devices"
        raise BackendError(f"no NVIDIA GPU visible to CUDA ({why})")
    props = cuda_check(cudart.cudaGetDeviceProperties(0))
    name = props.name.decode(errors="replace") if isinstance(props.name, bytes) else props.name
    return GpuInfo(
        name.rstrip("\x00").strip(),
        f"{props.major}.{props.minor}",
        int(props.totalGlobalMem) // (1 << 20),
    )


def tensorrt_version() -> str:
    """The installed TensorRT's version; BackendError with the install hint when missing."""
    if importlib.util.find_spec("tensorrt") is None:
        raise BackendError(TENSORRT_MISSING)
    try:
        import tensorrt as trt
    except (ImportError, OSError) as exc:  # wheel present but its libraries are not
        raise BackendError(f"TensorRT is installed but cannot be loaded: {exc}") from exc
    return str(trt.__version__)


class _Pinned:
    """A page-locked host buffer viewed as a flat uint8 NumPy array."""

    def __init__(self, cudart: Any, nbytes: int) -> None:
        self.nbytes = max(1, nbytes)
        self.ptr = cuda_check(cudart.cudaMallocHost(self.nbytes))
        c_buf = (ctypes.c_uint8 * self.nbytes).from_address(self.ptr)
        self.array = np.frombuffer(c_buf, np.uint8)


class TrtBackend:
    """One deserialized TensorRT engine with one execution context and one CUDA stream.

    Args:
        path: the ``.engine`` / ``.plan`` file (built by ``platestream build-engines`` for this
            GPU and TensorRT version; engine.backends.engine_cache says how staleness is
            detected).

    ``infer`` is serialised by a lock: an execution context is not thread-safe.
    """

    def __init__(self, path: Path) -> None:
        tensorrt_version()  # the clear "not installed" message first
        import tensorrt as trt

        self._trt = trt
        self._cudart = _cudart()
        self.path = Path(path)
        self.name = "tensorrt"
        self._lock = threading.Lock()
        self._device: dict[str, tuple[int, int]] = {}  # name -> (ptr, nbytes)
        self._host: dict[str, _Pinned] = {}
        self._allocators: dict[str, Any] = {}
        self._stream = None
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            raise ModelLoadError(f"cannot read TensorRT engine {self.path}: {exc}") from exc
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self._engine = self._runtime.deserialize_cuda_engine(data)
        if self._engine is None:
            raise ModelLoadError(
                f"TensorRT could not load {self.path} (built for another GPU or TensorRT "
                "version?); rebuild it with `platestream build-engines`"
            )
        self._ctx = self._engine.create_execution_context()
        self._stream = cuda_check(self._cudart.cudaStreamCreate())
        try:
            self._setup_tensors()
        except Exception:
            self.close()
            raise

    def _setup_tensors(self) -> None:
        trt, eng = self._trt, self._engine
        self._in: dict[str, TensorSpec] = {}
        self._max_in: dict[str, tuple[int, ...]] = {}
        self._out: list[str] = []
        self._dtype: dict[str, np.dtype] = {}
        for i in range(eng.num_io_tensors):
            name = eng.get_tensor_name(i)
            self._dtype[name] = np.dtype(trt.nptype(eng.get_tensor_dtype(name)))
            shape = tuple(eng.get_tensor_shape(name))
            if eng.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                spec = TensorSpec(tuple(d if d >= 0 else None for d in shape), self._dtype[name])
                self._in[name] = spec
                if -1 in shape:
                    if eng.num_optimization_profiles < 1:
                        raise ModelLoadError(
                            f"{self.path}: input {name} has dynamic shape, but no profile "
                            "was specified"
                        )
                    shape = tuple(eng.get_tensor_profile_shape(name, 0)[2])  # max shape
                self._max_in[name] = shape
                self._ctx.set_input_shape(name, shape)
            else:
                self._out.append(name)
        for name, shape in self._max_in.items():
            self._alloc(name, _nbytes(shape, self._dtype[name]), host=False)
        # The largest batch one call takes (the profile's max); callers split longer lists.
        self.max_batch = min((s[0] for s in self._max_in.values() if s), default=1)
        for name in self._out:
            shape = tuple(self._ctx.get_tensor_shape(name))
            if -1 in shape:  # data-dependent (NMS): TensorRT tells the size at run time
                self._allocators[name] = self._output_allocator(name)
                self._ctx.set_output_allocator(name, self._allocators[name])
            else:
                self._alloc(name, _nbytes(shape, self._dtype[name]), host=True)
                self._ctx.set_tensor_address(name, self._device[name][0])

    def _alloc(self, name: str, nbytes: int, *, host: bool) -> int:
        old = self._device.pop(name, None)
        if old is not None:
            cuda_check(self._cudart.cudaFree(old[0]))
        ptr = cuda_check(self._cudart.cudaMalloc(max(1, nbytes)))
        self._device[name] = (ptr, max(1, nbytes))
        if host and (name not in self._host or self._host[name].nbytes < nbytes):
            if name in self._host:
                cuda_check(self._cudart.cudaFreeHost(self._host.pop(name).ptr))
            self._host[name] = _Pinned(self._cudart, nbytes)
        return ptr

    def _output_allocator(self, name: str) -> Any:
        backend = self
        trt = self._trt
        try:  # an upper bound lets the buffer be allocated once, up front
            bound = int(self._ctx.get_max_output_size(name))
        except (AttributeError, RuntimeError):
            bound = 0
        if bound > 0:
            self._alloc(name, bound, host=True)

        class _Allocator(trt.IOutputAllocator):
            def __init__(self) -> None:
                trt.IOutputAllocator.__init__(self)
                self.shape: tuple[int, ...] | None = None

            def reallocate_output(self, tensor_name, memory, size, alignment):  # noqa: ARG002
                have = backend._device.get(tensor_name)
                if have is not None and have[1] >= size:
                    return have[0]
                return backend._alloc(tensor_name, int(size), host=True)

            def reallocate_output_async(self, tensor_name, memory, size, alignment, stream):
                return self.reallocate_output(tensor_name, memory, size, alignment)

            def notify_shape(self, tensor_name, shape):  # noqa: ARG002
                self.shape = tuple(int(d) for d in shape)

        return _Allocator()

    def inputs(self) -> dict[str, TensorSpec]:
        return dict(self._in)

    def infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        with self._lock:
            try:
                return self._infer(feeds)
            except BackendError as exc:
                raise BackendError(f"{self.path.name}: inference failed: {exc}") from exc

    def _infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        cudart, ctx, stream = self._cudart, self._ctx, self._stream
        h2d = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        d2h = cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        missing = set(self._in) - set(feeds)
        if missing:
            raise BackendError(f"missing input(s) {sorted(missing)}")
        keep = []  # the arrays must live until the synchronize below
        for name, spec in self._in.items():
            x = np.ascontiguousarray(feeds[name], dtype=spec.dtype)
            big = self._max_in[name]
            if x.ndim != len(big) or any(a > b for a, b in zip(x.shape, big, strict=True)):
                raise BackendError(
                    f"input {name}: shape {x.shape} outside the engine's profile (max {big}); "
                    "rebuild with a larger --max-batch or split the batch"
                )
            keep.append(x)
            ctx.set_input_shape(name, x.shape)
            ptr = self._device[name][0]
            ctx.set_tensor_address(name, ptr)
            cuda_check(cudart.cudaMemcpyAsync(ptr, x.ctypes.data, x.nbytes, h2d, stream))
        if not ctx.execute_async_v3(stream):
            raise BackendError("execute_async_v3 failed (see the TensorRT log)")
        # Static outputs: their shapes are known now, so their copies join the same stream and
        # one synchronize covers everything. Data-dependent ones (NMS) only learn their shape
        # when execution has finished, which costs one more synchronize.
        shapes = {n: tuple(ctx.get_tensor_shape(n)) for n in self._out if n not in self._allocators}
        for name, shape in shapes.items():
            self._copy_out(name, shape, d2h)
        cuda_check(cudart.cudaStreamSynchronize(stream))
        if self._allocators:
            for name, alloc in self._allocators.items():
                if alloc.shape is None:
                    raise BackendError(f"output {name}: TensorRT reported no shape")
                shapes[name] = alloc.shape
                self._copy_out(name, alloc.shape, d2h)
            cuda_check(cudart.cudaStreamSynchronize(stream))
        out: dict[str, np.ndarray] = {}
        for name in self._out:
            shape, dtype = shapes[name], self._dtype[name]
            n = _nbytes(shape, dtype)
            data = self._host[name].array[:n] if n else np.empty(0, np.uint8)
            out[name] = data.view(dtype).reshape(shape).copy()
        del keep
        return out

    def _copy_out(self, name: str, shape: tuple[int, ...], kind: Any) -> None:
        n = _nbytes(shape, self._dtype[name])
        if n:
            src = self._device[name][0]
            cuda_check(
                self._cudart.cudaMemcpyAsync(self._host[name].ptr, src, n, kind, self._stream)
            )

    def close(self) -> None:
        """Free device and pinned memory and the stream; safe to call twice."""
        cudart = getattr(self, "_cudart", None)
        if cudart is None:
            return
        errors = []
        for ptr, _ in self._device.values():
            errors.append(int(cudart.cudaFree(ptr)[0]))
        for buf in self._host.values():
            errors.append(int(cudart.cudaFreeHost(buf.ptr)[0]))
        if self._stream is not None:
            errors.append(int(cudart.cudaStreamDestroy(self._stream)[0]))
        self._device, self._host, self._allocators, self._stream = {}, {}, {}, None
        self._ctx = self._engine = None
        if any(errors):
            log.warning("tensorrt %s: CUDA errors %s while freeing buffers", self.path.name,
                        [e for e in errors if e])


def _nbytes(shape: tuple[int, ...], dtype: np.dtype) -> int:
    return int(np.prod(shape, dtype=np.int64)) * dtype.itemsize if shape else dtype.itemsize
