#!/usr/bin/env python3
"""How fast is this machine right now? The plate detector (int8 where it is quantized, fp32
otherwise) on 1 ONNX Runtime thread at the stream's fitted input (256x416), timed on every core
at once: one process per core, each the median of 8 rounds of 10 calls.

A shared virtual machine's speed moves by 2x within minutes (other tenants; one core can be
slower than the other), so stream benchmarks say next to their figures what this read before
and after (``scripts/bench_stream.py --probe``). ~14 ms per call per core was a fast hour on the
development machine, 20-30 ms a slow one.

    PLATESTREAM_MODELS=../shared/models .venv/bin/python scripts/probe_host.py \
        [--cores N] [--out reports/probe_host.json]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CANVAS = (256, 416)
ROUNDS, CALLS = 8, 10


def detector() -> tuple[Path, str]:
    """The plate detector the stream runs here: (path, precision)."""
    from engine import models, quantize
    from stream.cli import engine_settings

    eng = engine_settings(argparse.Namespace())
    plate = models.model_path(models.PLATE_DETECTOR,
                              models.resolve_models_dir(eng.models_dir))
    int8 = quantize.int8_path(models.PLATE_DETECTOR, plate,
                              quantize.int8_cache_dir(eng.int8_cache_dir))
    return (int8, "int8") if int8 is not None else (plate, "fp32")


def _time_one(path: str) -> float:
    """Median ms per call on 1 thread (run in its own process)."""
    import numpy as np

    from engine.backends.fitted import fitted_graph
    from engine.backends.onnxruntime import OrtBackend

    backend = OrtBackend(Path(path), 1, graph=fitted_graph(Path(path), CANVAS))
    feed = {next(iter(backend.inputs())): np.random.default_rng(0).random(
        (1, 3, *CANVAS), np.float32)}
    for _ in range(3):
        backend.infer(feed)
    rounds = []
    for _ in range(ROUNDS):
        t0 = time.perf_counter()
        for _ in range(CALLS):
            backend.infer(feed)
        rounds.append((time.perf_counter() - t0) / CALLS * 1000)
    return statistics.median(rounds)


def probe(cores: int | None = None) -> dict:
    """Per-core median ms of the plate detector, every core busy at once."""
    path, precision = detector()
    cores = cores or len(os.sched_getaffinity(0))
    with multiprocessing.get_context("spawn").Pool(cores) as pool:
        ms = pool.map(_time_one, [str(path)] * cores)
    return {"at": time.strftime("%H:%M:%S"), "precision": precision,
            "input": f"{CANVAS[1]}x{CANVAS[0]}", "threads": 1,
            "ms_per_core": [round(m, 2) for m in ms]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cores", type=int, default=None, help="processes (default: all cores)")
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "probe_host.json")
    args = ap.parse_args()
    from engine.errors import ModelLoadError

    try:
        report = probe(args.cores)
    except ModelLoadError as exc:
        print(f"probe_host: {exc}", file=sys.stderr)
        return 1
    print(f"plate detector {report['precision']} {report['input']}, 1 thread, ms per call "
          f"per core: {' / '.join(map(str, report['ms_per_core']))}")
    from scripts.benchlib import write_report

    write_report(args.out, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
