"""OpenVINO backend (the CPU): the same ONNX files, compiled by Intel's OpenVINO runtime.

``engine.backend: openvino`` (``pip install platestream[openvino]``); never picked by ``auto``.
On a CPU with AMX (Intel Xeon since Sapphire Rapids) OpenVINO runs the float models in
bfloat16 on the tile units, which ONNX Runtime's CPU provider does not: on the development
machine the plate detector took 0.7x the time of ONNX Runtime's int8 copy and an image 0.84-0.89x
(docs/perf/README.md, stop 23). The cost is memory: ~250 MB more at start and ~100-200 MB more
per engine thread, and in a stream of 8 cameras, where decoding shares the cores, no fewer
frames were dropped. ``precision`` picks ``bf16`` or ``fp32`` here (engine.precision).

Each calling thread gets its own compiled model with one stream: OpenVINO then runs the
inference on the caller's thread, as ONNX Runtime does, so an engine worker's priority and
core budget hold, and two workers never queue for one stream.
"""

from __future__ import annotations

import io
import locale
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from engine.backends.base import TensorSpec
from engine.errors import BackendError, ModelLoadError

__all__ = ["OvBackend", "ov_hint"]

log = logging.getLogger(__name__)

_CORE: Any = None
_CORE_LOCK = threading.Lock()
_LOCALE_LOCK = threading.Lock()


def _core() -> Any:
    """One ``openvino.Core`` per process (it holds the loaded plugins)."""
    global _CORE
    with _CORE_LOCK:
        if _CORE is None:
            import openvino as ov

            _CORE = ov.Core()
        return _CORE


def _read_onnx(model: Path | bytes) -> Any:
    """The model, read by OpenVINO's ONNX frontend alone (not left to guess the format)."""
    import openvino as ov

    return ov.convert_model(io.BytesIO(model) if isinstance(model, bytes) else str(model))


@contextmanager
def _keeping_locale() -> Iterator[None]:
    """OpenVINO sets the process's C locale to "C" in some calls (a compiled model loaded from
    its cache did, here): Python's default text encoding then turns ASCII, and ``open()`` of
    UTF-8 text anywhere in the process fails. Put it back. One such call at a time: a thread
    that began while another's call had changed it would put back "C"."""
    with _LOCALE_LOCK:
        saved = locale.setlocale(locale.LC_ALL)
        try:
            yield
        finally:
            if locale.setlocale(locale.LC_ALL) != saved:
                locale.setlocale(locale.LC_ALL, saved)


def ov_hint(precision: str) -> str:
    """OpenVINO's INFERENCE_PRECISION_HINT for an engine precision."""
    return {"bf16": "bf16", "fp32": "f32"}[precision]


class OvBackend:
    """One model compiled by OpenVINO for the CPU.

    Args:
        path: the ``.onnx`` file.
        threads: inference threads (the core budget); OpenVINO's own pinning of threads to
            cores is off: the cores are shared with the decoders.
        precision: ``bf16`` (AMX) or ``fp32``.
        graph: the serialized model to run instead of the file's (engine.backends.fitted);
            ``path`` still names it.
        cache_dir: where OpenVINO keeps compiled models (a compile takes ~1 s per model and
            input shape, a cached one ~0.25 s: each thread and each start compiles); None: no
            cache, as where the directory cannot be made.
    """

    def __init__(self, path: Path, threads: int = 2, precision: str = "fp32",
                 graph: bytes | None = None, cache_dir: Path | None = None) -> None:
        self.path = Path(path)
        self.precision = precision
        self._config = {"INFERENCE_NUM_THREADS": max(1, threads), "NUM_STREAMS": 1,
                        "PERFORMANCE_HINT": "LATENCY", "ENABLE_CPU_PINNING": False,
                        "INFERENCE_PRECISION_HINT": ov_hint(precision)}
        if cache_dir is not None:
            try:
                Path(cache_dir).mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                log.warning("engine: no OpenVINO model cache in %s (%s): each start compiles "
                            "the models", cache_dir, exc.strerror or exc)
            else:
                self._config["CACHE_DIR"] = str(cache_dir)
        try:
            with _keeping_locale():
                self._model = _read_onnx(graph if graph is not None else self.path)
        except Exception as exc:  # OpenVINO raises RuntimeError with its own text
            raise ModelLoadError(f"cannot load model {path}: {exc}") from exc
        # compiled on each thread's first call: the square sessions the fitted ones stand in
        # for are never compiled (~1 s each)
        self._local = threading.local()
        self.name = f"openvino:CPU:{precision}"
        self._inputs = {p.get_any_name(): TensorSpec(
            tuple(d.get_length() if d.is_static else None for d in p.get_partial_shape()),
            np.dtype(p.get_element_type().to_dtype()))
            for p in self._model.inputs}
        self._outputs = [p.get_any_name() for p in self._model.outputs]

    def _request(self) -> Any:
        req = getattr(self._local, "request", None)
        if req is None:
            try:
                with _keeping_locale():
                    compiled = _core().compile_model(self._model, "CPU", self._config)
            except Exception as exc:
                raise ModelLoadError(f"OpenVINO cannot compile {self.path}: {exc}") from exc
            req = self._local.request = compiled.create_infer_request()
        return req

    def inputs(self) -> dict[str, TensorSpec]:
        return dict(self._inputs)

    def infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            res = self._request().infer(feeds)
        except ModelLoadError:
            raise
        except Exception as exc:
            raise BackendError(f"{self.path.name}: inference failed: {exc}") from exc
        by_name = {port.get_any_name(): value for port, value in res.items()}
        return {name: by_name[name] for name in self._outputs}

    def close(self) -> None:
        self._model = None
        self._local = threading.local()
