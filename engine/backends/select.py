"""Which backend to run on: TensorRT, ONNX Runtime on CUDA, or ONNX Runtime (or OpenVINO) on the
CPU.

``select_backend`` is pure: every fact about the machine comes from a probe (a function
returning ``Check(ok, detail)``), so the decision table is tested with fakes and the real
probes are only used in production. Probes are called lazily, in the order the decision
needs them, so a CPU-only machine never imports TensorRT.

``auto``: TensorRT when a GPU, TensorRT and fresh engines for every model are present; else
ONNX Runtime's CUDA provider when a GPU and onnxruntime-gpu are present; else the CPU. The
``triton`` (models on a Triton Inference Server) and ``openvino`` (engine.backends.openvino:
faster per image on a CPU with AMX, but twice the memory and no gain in a busy stream, see
docs/perf/README.md) are only ever explicit choices. The
``Choice.reason`` says what was picked and why (the caller logs it). An explicit preference
that cannot be met raises BackendError with the reason instead of silently falling back.
"""

from __future__ import annotations

import glob
import importlib.util
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple, TypeAlias, get_args

from engine.errors import BackendError

__all__ = [
    "Preference",
    "Kind",
    "CPU_KINDS",
    "Check",
    "Choice",
    "Probes",
    "select_backend",
    "default_probes",
    "model_file",
]

log = logging.getLogger(__name__)

Preference: TypeAlias = Literal["auto", "onnxruntime", "openvino", "onnxruntime-cuda",
                                "tensorrt", "triton"]
Kind: TypeAlias = Literal["tensorrt", "onnxruntime-cuda", "onnxruntime", "openvino", "triton"]
# The CPU kinds: the ONNX files run there as they are, fitted to each frame (detector_input).
CPU_KINDS = ("onnxruntime", "openvino")
PREFERENCES: tuple[str, ...] = get_args(Preference)


class Check(NamedTuple):
    ok: bool
    detail: str  # what was found, or why not


@dataclass(frozen=True, slots=True)
class Probes:
    """The facts ``select_backend`` needs, as functions (injectable for tests).

    Attributes:
        gpu: is an NVIDIA GPU usable through CUDA? (detail: its name, or why not)
        tensorrt: can ``tensorrt`` be imported? (detail: version, or the install hint)
        engines: given (engines_dir, onnx model paths), is there an engine for each model,
            fresh for this GPU, TensorRT version and model sha256? (detail: the first problem)
        ort_cuda: does ONNX Runtime offer CUDAExecutionProvider?
        openvino: is OpenVINO installed? (detail: its version, or the install hint)
    """

    gpu: Callable[[], Check]
    tensorrt: Callable[[], Check]
    engines: Callable[[Path, Sequence[Path]], Check]
    ort_cuda: Callable[[], Check]
    openvino: Callable[[], Check]


@dataclass(frozen=True, slots=True)
class Choice:
    kind: Kind
    reason: str

    @property
    def providers(self) -> list[str]:
        """ONNX Runtime providers for this choice (best first)."""
        if self.kind == "onnxruntime-cuda":
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]
        return ["CPUExecutionProvider"]


def select_backend(
    preference: Preference,
    engines_dir: Path | str | None,
    models: Sequence[Path] = (),
    *,
    probes: Probes | None = None,
) -> Choice:
    """Pick the backend for ``preference``.

    Args:
        preference: "auto", or the backend the user asked for.
        engines_dir: where ``platestream build-engines`` wrote the engines (None: no TensorRT).
        models: the ONNX files that will be loaded; each needs a fresh engine for TensorRT.
        probes: machine facts (default: the real ones, see ``default_probes``).

    Raises:
        BackendError: an unknown preference, or an explicit one this machine cannot run.
    """
    if preference not in PREFERENCES:
        raise BackendError(
            f"backend: unknown backend {preference!r}, expecting one of {', '.join(PREFERENCES)}"
        )
    if preference == "onnxruntime":
        return Choice("onnxruntime", "ONNX Runtime on the CPU, as configured")
    if preference == "triton":  # never picked by auto: it needs a server URL
        return Choice("triton", "a Triton Inference Server over gRPC, as configured")
    p = probes or default_probes()
    if preference == "openvino":
        ov = p.openvino()
        if not ov.ok:
            raise BackendError(f"backend openvino is not usable: {ov.detail}")
        return Choice("openvino", f"OpenVINO {ov.detail} on the CPU, as configured")
    gpu = p.gpu()
    if preference == "onnxruntime-cuda":
        cuda = p.ort_cuda() if gpu.ok else gpu
        if not cuda.ok:
            raise BackendError(f"backend onnxruntime-cuda is not usable: {cuda.detail}")
        return Choice("onnxruntime-cuda", f"ONNX Runtime CUDA on {gpu.detail}, as configured")
    trt = _tensorrt_check(p, gpu, engines_dir, models)
    if preference == "tensorrt":
        if not trt.ok:
            raise BackendError(f"backend tensorrt is not usable: {trt.detail}")
        return Choice("tensorrt", f"TensorRT on {gpu.detail}, as configured ({trt.detail})")
    if not gpu.ok:
        return Choice("onnxruntime", f"ONNX Runtime on the CPU: {gpu.detail}")
    if trt.ok:
        return Choice("tensorrt", f"TensorRT on {gpu.detail} ({trt.detail})")
    cuda = p.ort_cuda()
    if cuda.ok:
        return Choice(
            "onnxruntime-cuda", f"ONNX Runtime CUDA on {gpu.detail}; TensorRT not used: "
            f"{trt.detail}"
        )
    return Choice(
        "onnxruntime", f"ONNX Runtime on the CPU although {gpu.detail} is present: TensorRT "
        f"not used ({trt.detail}); ONNX Runtime CUDA not used ({cuda.detail})"
    )


def _tensorrt_check(
    p: Probes, gpu: Check, engines_dir: Path | str | None, models: Sequence[Path]
) -> Check:
    if not gpu.ok:
        return gpu
    if engines_dir is None:
        return Check(False, "no engines directory configured (engines_dir)")
    if not models:
        return Check(False, "no models given to check engines for")
    trt = p.tensorrt()
    if not trt.ok:
        return trt
    engines = p.engines(Path(engines_dir), models)
    return engines if not engines.ok else Check(True, f"TensorRT {trt.detail}, {engines.detail}")


def model_file(choice: Choice, onnx: Path, engines_dir: Path | str | None) -> Path:
    """The file to open for ``onnx`` under ``choice``: its engine for TensorRT, else itself."""
    if choice.kind != "tensorrt":
        return onnx
    if engines_dir is None:
        raise BackendError("backend tensorrt needs an engines directory")
    from engine.backends.engine_cache import engine_path

    return engine_path(Path(engines_dir), onnx)


# --- the real probes -------------------------------------------------------------------


def _probe_gpu() -> Check:
    from engine.backends.tensorrt import CUDA_PYTHON_MISSING, gpu_info

    try:
        g = gpu_info()
    except BackendError as exc:
        if str(exc) != CUDA_PYTHON_MISSING:
            return Check(False, str(exc))
        # Without cuda-python the device nodes still tell whether a GPU is there
        # (onnxruntime-gpu does not need cuda-python).
        nodes = sorted(glob.glob("/dev/nvidia[0-9]*")) + glob.glob("/dev/nvhost-ctrl-gpu")
        if not nodes:
            return Check(False, "no NVIDIA GPU (no /dev/nvidia* device)")
        return Check(True, f"an NVIDIA GPU at {nodes[0]} (name unknown: cuda-python missing)")
    return Check(True, f"{g.name} (sm {g.compute_capability}, {g.memory_mb} MiB)")


def _probe_tensorrt() -> Check:
    from engine.backends.tensorrt import CUDA_PYTHON_MISSING, tensorrt_version

    try:
        version = tensorrt_version()
    except BackendError as exc:
        return Check(False, str(exc))
    if importlib.util.find_spec("cuda") is None:
        return Check(False, CUDA_PYTHON_MISSING)
    return Check(True, version)


def _probe_engines(engines_dir: Path, models: Sequence[Path]) -> Check:
    from engine.backends.engine_cache import EngineKey, engine_path, stale_reason
    from engine.backends.tensorrt import gpu_info, tensorrt_version
    from engine.models import sha256_file

    try:
        gpu, version = gpu_info(), tensorrt_version()
    except BackendError as exc:
        return Check(False, str(exc))
    for onnx in models:
        want = EngineKey(gpu.name, gpu.compute_capability, version, sha256_file(onnx))
        problem = stale_reason(engine_path(engines_dir, onnx), want, runtime_only=True)
        if problem:
            return Check(False, f"{problem}; run `platestream build-engines --out {engines_dir}`")
    return Check(True, f"{len(models)} fresh engines in {engines_dir}")


def _probe_ort_cuda() -> Check:
    if importlib.util.find_spec("onnxruntime") is None:
        return Check(False, "onnxruntime is not installed")
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        return Check(True, "CUDAExecutionProvider")
    return Check(False, "onnxruntime has no CUDAExecutionProvider (pip install "
                 "platestream[gpu] on a machine with an NVIDIA GPU)")


def _probe_openvino() -> Check:
    if importlib.util.find_spec("openvino") is None:
        return Check(False, "OpenVINO is not installed (pip install platestream[openvino])")
    from importlib.metadata import version

    return Check(True, version("openvino"))


def default_probes() -> Probes:
    return Probes(_probe_gpu, _probe_tensorrt, _probe_engines, _probe_ort_cuda, _probe_openvino)
