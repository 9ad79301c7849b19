"""Which numeric precision the CPU models run in: fp32, or the int8 copies from
``platestream models quantize`` (engine.quantize).

``auto`` takes int8 when the int8 plate detector is in the cache and the CPU has integer
dot-product instructions (AVX-512 VNNI, AVX-VNNI or AMX); without them ONNX Runtime's int8
kernels are slower than fp32. GPU backends always run the fp32 ONNX files (TensorRT builds its
own int8 engines: ``platestream build-engines --int8``). Like ``select_backend``, the decision is
pure: the CPU flags and the cache lookup are passed in, so tests cover the table with fakes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeAlias, get_args

from engine.errors import EngineConfigError

__all__ = ["Precision", "PRECISIONS", "PrecisionChoice", "cpu_int8_flags", "select_precision"]

Precision: TypeAlias = Literal["auto", "fp32", "int8"]
PRECISIONS: tuple[str, ...] = get_args(Precision)
# /proc/cpuinfo flags of the instructions ONNX Runtime's u8s8 kernels use.
INT8_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


def cpu_int8_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> tuple[str, ...]:
    """The int8 dot-product flags this CPU has (empty when none, or /proc/cpuinfo is absent)."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return ()
    for line in text.splitlines():
        if line.startswith("flags") or line.startswith("Features"):
            have = set(line.partition(":")[2].split())
            return tuple(f for f in INT8_FLAGS if f in have)
    return ()


@dataclass(frozen=True, slots=True)
class PrecisionChoice:
    precision: Literal["fp32", "int8"]
    reason: str


def select_precision(
    preference: str, *, cpu_backend: bool, int8_ready: bool, flags: tuple[str, ...],
) -> PrecisionChoice:
    """Pick fp32 or int8.

    Args:
        preference: ``auto``, ``fp32`` or ``int8``.
        cpu_backend: the models run on ONNX Runtime's CPU provider.
        int8_ready: the int8 plate detector for today's model and ONNX Runtime is cached.
        flags: the CPU's int8 flags (``cpu_int8_flags``).

    Raises:
        EngineConfigError: an unknown preference, or ``int8`` where it cannot run.
    """
    if preference not in PRECISIONS:
        raise EngineConfigError(
            f"precision: expected one of {', '.join(PRECISIONS)}, got {preference!r}")
    if preference == "fp32":
        return PrecisionChoice("fp32", "fp32, as configured")
    if not cpu_backend:
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
        note = "" if flags else " (this CPU has no VNNI/AMX: int8 may be slower than fp32)"
        return PrecisionChoice("int8", f"int8, as configured{note}")
    if not flags:
        return PrecisionChoice("fp32", "fp32: this CPU has no VNNI or AMX instructions, on "
                                       "which int8 would be slower")
    return PrecisionChoice("int8", f"int8: int8 models cached and the CPU has "
                                   f"{', '.join(flags)}")
