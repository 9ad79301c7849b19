"""Engine cache: which engine belongs to which GPU, TensorRT version and model bytes.

A TensorRT engine only runs on the GPU model and TensorRT version that built it, and only
means something for the ONNX bytes it was built from. Each ``<model stem>.engine`` has a
``<model stem>.engine.json`` beside it recording those facts; an engine whose record does
not match this machine is *stale*: the builder rebuilds it and the runtime never loads it.

Everything here is pure (no TensorRT, no CUDA) so it is tested on machines without a GPU.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from engine.models import sha256_file

__all__ = [
    "CACHE_FORMAT",
    "EngineKey",
    "engine_path",
    "meta_path",
    "read_meta",
    "write_meta",
    "stale_reason",
]

CACHE_FORMAT = 1  # bump when the meaning of an engine file changes

# Fields that decide whether an engine can run here at all (the runtime checks only these);
# the rest are build options: a different value means "rebuild", not "unusable".
RUNTIME_FIELDS = ("gpu_name", "compute_capability", "tensorrt", "model_sha256", "cache_format")


@dataclass(frozen=True, slots=True)
class EngineKey:
    """Everything an engine's bytes depend on.

    Attributes:
        gpu_name: CUDA device name, e.g. "NVIDIA H100 80GB HBM3" or "Orin".
        compute_capability: "9.0", "8.7"...
        tensorrt: TensorRT version string, e.g. "10.3.0".
        model_sha256: sha256 of the ONNX file the engine was built from.
        precision: "fp32", "fp16" or "int8".
        max_batch: largest batch of the optimisation profile (1 for fixed-batch builds).
        calib_sha256: digest of the INT8 calibration image list ("" when not INT8).
    """

    gpu_name: str
    compute_capability: str
    tensorrt: str
    model_sha256: str
    precision: str = "fp32"
    max_batch: int = 1
    calib_sha256: str = ""
    cache_format: int = CACHE_FORMAT

    def digest(self) -> str:
        """A short stable id of the key (sha256 of its canonical JSON)."""
        blob = json.dumps(asdict(self), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def diff(self, other: EngineKey, names: tuple[str, ...] | None = None) -> list[str]:
        """``field: old -> new`` for each differing field (all fields, or ``names``)."""
        names = names or tuple(f.name for f in fields(self))
        return [
            f"{n}: {getattr(other, n)!r} -> {getattr(self, n)!r}"
            for n in names
            if getattr(self, n) != getattr(other, n)
        ]


def engine_path(engines_dir: Path, model: Path | str) -> Path:
    """``engines/<model stem>.engine``: one engine per ONNX model, whatever its precision."""
    return Path(engines_dir) / f"{Path(model).stem}.engine"


def meta_path(engine: Path) -> Path:
    return engine.with_name(engine.name + ".json")


def read_meta(engine: Path) -> dict | None:
    """The engine's record, or None when it is missing or unreadable."""
    try:
        data = json.loads(meta_path(engine).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_meta(engine: Path, key: EngineKey, extra: dict | None = None) -> Path:
    """Record ``key`` (plus the engine's own sha256 and ``extra`` facts) beside ``engine``."""
    data = {
        "key": asdict(key),
        "digest": key.digest(),
        "engine_sha256": sha256_file(engine),
        **(extra or {}),
    }
    path = meta_path(engine)
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return path


def _key_from_meta(meta: dict) -> EngineKey | None:
    raw = meta.get("key")
    if not isinstance(raw, dict):
        return None
    try:
        return EngineKey(**{f.name: raw[f.name] for f in fields(EngineKey)})
    except (KeyError, TypeError):
        return None


def stale_reason(engine: Path, want: EngineKey, *, runtime_only: bool = False,
                 verify_bytes: bool = True) -> str | None:
    """None when ``engine`` matches ``want``, else one line saying why it must be rebuilt.

    Args:
        runtime_only: compare only what decides whether the engine can run here (GPU,
            TensorRT, model bytes, cache format), not the build options.
        verify_bytes: check the engine file's sha256 against its record (a truncated or
            replaced file is stale too).
    """
    if not engine.is_file():
        return f"{engine} does not exist"
    meta = read_meta(engine)
    if meta is None:
        return f"{engine} has no readable {meta_path(engine).name} record"
    have = _key_from_meta(meta)
    if have is None:
        return f"{meta_path(engine)} is not a platestream engine record"
    changed = want.diff(have, RUNTIME_FIELDS if runtime_only else None)
    if changed:
        return f"{engine.name} was built for another setup ({'; '.join(changed)})"
    if verify_bytes and meta.get("engine_sha256") != sha256_file(engine):
        return f"{engine.name} does not match the sha256 in its record (truncated or replaced?)"
    return None
