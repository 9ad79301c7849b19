"""Which numeric precision the CPU models run in: fp32, the int8 copies from ``platestream
models quantize`` (engine.quantize) on ONNX Runtime, or bfloat16 on OpenVINO.

On ONNX Runtime ``auto`` takes int8 when the int8 plate detector is in the cache and the CPU has
integer dot-product instructions (AVX-512 VNNI, AVX-VNNI or AMX); without them ONNX Runtime's
int8 kernels are slower than fp32. On OpenVINO ``auto`` takes bf16 when the CPU has bfloat16
instructions (AMX or AVX-512 BF16); its int8 is not offered there (the QDQ copies ran slower on
OpenVINO than its bfloat16). GPU backends always run the fp32 ONNX files (TensorRT builds its
own int8 engines: ``platestream build-engines --int8``). Like ``select_backend``, the decision is
pure: the CPU flags and the cache lookup are passed in, so tests cover the table with fakes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeAlias, get_args

from engine.errors import EngineConfigError

__all__ = ["Precision", "PRECISIONS", "PrecisionChoice", "INT8_FLAGS", "BF16_FLAGS", "cpu_flags",
           "select_precision"]

Precision: TypeAlias = Literal["auto", "fp32", "int8", "bf16"]
PRECISIONS: tuple[str, ...] = get_args(Precision)
# /proc/cpuinfo flags of the instructions ONNX Runtime's u8s8 kernels use.
INT8_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")
# ... and those OpenVINO runs bfloat16 on.
BF16_FLAGS = ("amx_bf16", "avx512_bf16")


def cpu_flags(wanted: tuple[str, ...],
              cpuinfo: Path = Path("/proc/cpuinfo")) -> tuple[str, ...]:
    """Those of ``wanted`` this CPU has, in their order (empty when /proc/cpuinfo is absent)."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return ()
    for line in text.splitlines():
        if line.startswith("flags") or line.startswith("Features"):
            have = set(line.partition(":")[2].split())
            return tuple(f for f in wanted if f in have)
    return ()


@dataclass(frozen=True, slots=True)
class PrecisionChoice:
    precision: Literal["fp32", "int8", "bf16"]
    reason: str


def select_precision(
    preference: str, *, backend: str, int8_ready: bool, flags: tuple[str, ...],
) -> PrecisionChoice:
    """Pick fp32, int8 or bf16.

    Args:
        preference: ``auto``, ``fp32``, ``int8`` or ``bf16``.
        backend: the backend's kind (engine.backends.select.Kind).
        int8_ready: the int8 plate detector for today's model and ONNX Runtime is cached.
        flags: the CPU's int8 and bfloat16 flags (``cpu_flags(INT8_FLAGS + BF16_FLAGS)``).

    Raises:
        EngineConfigError: an unknown preference, or one that cannot run on ``backend``.
    """
    if preference not in PRECISIONS:
        raise EngineConfigError(
            f"precision: expected one of {', '.join(PRECISIONS)}, got {preference!r}")
    if preference == "fp32":
        return PrecisionChoice("fp32", "fp32, as configured")
    if backend == "openvino":
        return _on_openvino(preference, tuple(f for f in flags if f in BF16_FLAGS))
    if preference == "bf16":
        raise EngineConfigError(
            f"precision bf16 runs on OpenVINO (backend openvino), not on {backend}")
    int8_flags = tuple(f for f in flags if f in INT8_FLAGS)
    if backend != "onnxruntime":
        if preference == "int8":
            raise EngineConfigError(
                "precision int8 is for ONNX Runtime on the CPU; on a GPU build int8 TensorRT "
                "engines with `platestream build-engines --int8`")
        return PrecisionChoice("fp32", "fp32: the int8 models are for the CPU backend only")
    if not int8_ready:
        if preference == "int8":
            raise EngineConfigError(
                "precision int8: no int8 models for these models and this ONNX Runtime in the "
                "cache; run `platestream models quantize`")
        return PrecisionChoice("fp32", "fp32: no int8 models in the cache (build them with "
                                       "`platestream models quantize`)")
    if preference == "int8":
        note = "" if int8_flags else " (this CPU has no VNNI/AMX: int8 may be slower than fp32)"
        return PrecisionChoice("int8", f"int8, as configured{note}")
    if not int8_flags:
        return PrecisionChoice("fp32", "fp32: this CPU has no VNNI or AMX instructions, on "
                                       "which int8 would be slower")
    return PrecisionChoice("int8", f"int8: int8 models cached and the CPU has "
                                   f"{', '.join(int8_flags)}")


def _on_openvino(preference: str, bf16_flags: tuple[str, ...]) -> PrecisionChoice:
    if preference == "int8":
        raise EngineConfigError(
            "precision int8 is ONNX Runtime's (backend onnxruntime); on OpenVINO use bf16 or "
            "fp32: the int8 copies ran slower there than its bfloat16")
    if bf16_flags:
        how = "as configured" if preference == "bf16" else "the CPU has"
        return PrecisionChoice("bf16", f"bf16 on OpenVINO, {how} ({', '.join(bf16_flags)})")
    if preference == "bf16":
        raise EngineConfigError(
            "precision bf16: this CPU has no bfloat16 instructions (AMX or AVX-512 BF16)")
    return PrecisionChoice("fp32", "fp32 on OpenVINO: this CPU has no bfloat16 instructions "
                                   "(AMX or AVX-512 BF16)")
