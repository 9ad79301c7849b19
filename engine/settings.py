"""The engine's settings: the one schema behind the YAML ``engine:`` section, the CLI's engine
flags and the ``PLATESTREAM_*`` environment variables.

Each field says in its metadata how it is given: ``flag`` (``engine``: every command that loads
the engine; ``worker``: commands that run an engine worker), ``env`` (the variable), ``path``
(a relative path in a config file is relative to that file), ``help`` and bounds (``ge``/
``le``, checked by the YAML loader). ``stream.cli`` builds the flags from these fields and fills
them in this order: command line > environment > config file > default. The engine itself never
reads the environment. A new setting is one field here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.backends.fitted import DetectorInput
from engine.backends.select import Preference
from engine.backends.triton import TritonSettings
from engine.precision import Precision

__all__ = ["EngineSettings", "DEFAULT_WORKERS"]

DEFAULT_WORKERS = 2  # engine threads; with cores / workers ONNX Runtime threads each


@dataclass(frozen=True)
class EngineSettings:
    backend: Preference = field(default="auto", metadata={
        "flag": "engine", "env": "PLATESTREAM_BACKEND",
        "help": "inference backend (auto: TensorRT when a GPU and fresh engines are present, "
                "else ONNX Runtime; openvino: OpenVINO on the CPU, pip install "
                "platestream[openvino])"})
    precision: Precision = field(default="auto", metadata={
        "flag": "engine", "env": "PLATESTREAM_PRECISION",
        "help": "CPU model precision (auto: the int8 models from `platestream models quantize` "
                "when the CPU has VNNI or AMX; on OpenVINO bf16 when the CPU has AMX or "
                "AVX-512 BF16)"})
    detector_input: DetectorInput = field(default="fit", metadata={
        "flag": "engine", "env": "PLATESTREAM_DETECTOR_INPUT",
        "help": "detector input on the CPU: fit (each frame's own aspect, 416 on the long "
                "side: 0.6x the work for 16:9) or square (416x416, as exported)"})
    models_dir: str | None = field(default=None, metadata={
        "flag": "engine", "env": "PLATESTREAM_MODELS", "path": True,
        "help": "models directory (default: ~/.cache/platestream/models)"})
    engines_dir: str | None = field(default=None, metadata={
        "flag": "engine", "env": "PLATESTREAM_ENGINES", "path": True,
        "help": "TensorRT engines from `platestream build-engines` (default: the state "
                "directory's engines/)"})
    int8_cache_dir: str | None = field(default=None, metadata={
        "env": "PLATESTREAM_INT8_CACHE", "path": True,
        "help": "int8 models from `platestream models quantize` (default: "
                "~/.cache/platestream/models/int8)"})
    threads: int | None = field(default=None, metadata={
        "flag": "engine", "ge": 1, "le": 256,
        "help": "ONNX Runtime threads per model run (default: cores / workers)"})
    workers: int = field(default=DEFAULT_WORKERS, metadata={
        "flag": "worker", "ge": 1, "le": 16,
        "help": f"engine threads running images in parallel (default {DEFAULT_WORKERS})"})
    max_batch: int = field(default=8, metadata={
        "flag": "worker", "ge": 1, "le": 64,
        "help": "images per engine call; each holds ~12 MB of model activations (default 8; "
                "serve without an engine: section 4)"})
    batch_window_ms: float = field(default=5.0, metadata={
        "flag": "worker", "ge": 0, "le": 1000,
        "help": "how long to wait to batch concurrent images (default 5)"})
    triton: TritonSettings = field(default_factory=TritonSettings, metadata={
        "help": "the Triton server for backend: triton (url, timeout, retries...); --triton-url "
                "/ $PLATESTREAM_TRITON_URL set its url"})
    max_queue: int = field(default=64, metadata={
        "ge": 1, "help": "images waiting for the engine (frames dropped / 429 beyond)"})
