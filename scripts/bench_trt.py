#!/usr/bin/env python3
"""Milliseconds per image, TensorRT vs ONNX Runtime, at batch 1 and 8; writes a JSON report.

    python scripts/bench_trt.py --engines engines/ [--build --fp16] [--out reports/bench_trt.json]

Per model: ms per image for TensorRT and ONNX Runtime (CPU, and CUDA when onnxruntime-gpu
is installed) at batch 1 and batch 8 (a model built at batch 1 is run 8 times for batch
8), plus the whole Recognizer on the evaluation images. Inputs are real images from
../shared/evaldata, preprocessed by the engine's own functions. Without an NVIDIA GPU and
TensorRT it prints one line saying so and exits with status 2.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

SHARED = Path(os.environ.get("PLATESTREAM_SHARED", ROOT.parent / "shared"))


def _time(fn, iters: int, warmup: int = 5) -> dict:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return {"median_ms": statistics.median(times), "p90_ms": float(np.percentile(times, 90)),
            "mean_ms": statistics.fmean(times)}


def _inputs(models_dir: Path, images: list[Path]) -> dict[str, np.ndarray]:
    """Eight real preprocessed inputs per model: key -> (8, ...) array."""
    from trt_builder.calibrator import preprocessed_inputs

    out = {}
    for key in ("plate_detector", "vehicle_detector", "plate_ocr"):
        xs = list(itertools.islice(preprocessed_inputs(key, images, models_dir), 8))
        while len(xs) < 8:  # fewer plates than 8 in the sample: repeat them
            xs.append(xs[len(xs) % max(1, len(xs))])
        out[key] = np.concatenate(xs)
    return out


def _bench_backend(backend, x8: np.ndarray, iters: int) -> dict:
    name = next(iter(backend.inputs()))
    spec = backend.inputs()[name]
    one = {name: np.ascontiguousarray(x8[:1])}
    res = {"batch1": _time(lambda: backend.infer(one), iters)}
    if spec.dynamic_batch:
        eight = {name: np.ascontiguousarray(x8)}
        r = _time(lambda: backend.infer(eight), iters)
        res["batch8"] = {**r, "per_image_ms": r["median_ms"] / 8, "how": "one call of 8"}
    else:
        singles = [{name: np.ascontiguousarray(x8[i:i + 1])} for i in range(8)]
        r = _time(lambda: [backend.infer(f) for f in singles], iters)
        res["batch8"] = {**r, "per_image_ms": r["median_ms"] / 8, "how": "8 calls of 1"}
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--engines", default="engines", help="engines directory (default: engines)")
    ap.add_argument("--models-dir", default=None)
    ap.add_argument("--build", action="store_true", help="build missing/stale engines first")
    ap.add_argument("--fp16", action="store_true", help="with --build: FP16 engines")
    ap.add_argument("--iters", type=int, default=100)
    ap.add_argument("--images", type=int, default=64, help="evaluation images end to end")
    ap.add_argument("--out", default="reports/bench_trt.json")
    args = ap.parse_args()

    from engine import Recognizer, models
    from engine.backends import open_backend
    from engine.backends.engine_cache import engine_path, read_meta
    from engine.backends.select import default_probes

    probes = default_probes()
    gpu, tensorrt = probes.gpu(), probes.tensorrt()
    for check in (gpu, tensorrt):
        if not check.ok:
            print(f"bench_trt: no TensorRT GPU here: {check.detail}", file=sys.stderr)
            return 2
    models_dir = models.resolve_models_dir(args.models_dir or os.environ.get("PLATESTREAM_MODELS"))
    engines = Path(args.engines)
    specs = (models.PLATE_DETECTOR, models.PLATE_OCR, models.VEHICLE_DETECTOR)
    onnx = [models_dir / s.filename for s in specs]
    if args.build:
        from trt_builder.builder import BuildOptions, build_engines

        for r in build_engines(BuildOptions(models_dir, engines, fp16=args.fp16)):
            print(r.line())
    fresh = probes.engines(engines, onnx)
    if not fresh.ok:
        print(f"bench_trt: {fresh.detail}", file=sys.stderr)
        return 2

    images = sorted((SHARED / "evaldata" / "images").rglob("*.jpg"))
    feeds = _inputs(models_dir, images[:40])
    import onnxruntime as ort

    ort_kinds = [["CPUExecutionProvider"]]
    if "CUDAExecutionProvider" in ort.get_available_providers():
        ort_kinds.append(["CUDAExecutionProvider", "CPUExecutionProvider"])
    report: dict = {"gpu": gpu.detail, "tensorrt": tensorrt.detail,
                    "host": platform.node(), "cpu_threads": os.cpu_count(), "models": {}}
    for spec, path in zip(specs, onnx, strict=True):
        key = spec.key
        row = {}
        built = engine_path(engines, path)
        trt = open_backend(built)
        row["tensorrt"] = _bench_backend(trt, feeds[key], args.iters)
        meta = read_meta(built) or {}
        row["tensorrt"]["engine"] = {"precision": meta.get("key", {}).get("precision"),
                                     "batch": meta.get("batch")}
        trt.close()
        for prov in ort_kinds:
            b = open_backend(path, threads=os.cpu_count() or 2, providers=prov)
            row[b.name] = _bench_backend(b, feeds[key], max(10, args.iters // 5))
            b.close()
        report["models"][key] = row
        print(f"{key}: TensorRT {row['tensorrt']['batch1']['median_ms']:.2f} ms @1, "
              f"{row['tensorrt']['batch8']['per_image_ms']:.2f} ms/img @8")

    frames = [cv2.imread(str(p)) for p in images[: args.images]]
    e2e = {}
    for name, backend in (("tensorrt", "tensorrt"),
                          ("onnxruntime:CPUExecutionProvider", "onnxruntime")):
        rec = Recognizer.from_models_dir(models_dir, backend=backend, engines_dir=engines)
        for f in frames[:3]:
            rec.recognize(f)
        t0 = time.perf_counter()
        for f in frames:
            rec.recognize(f)
        e2e[name] = {"ms_per_image": (time.perf_counter() - t0) * 1000 / len(frames),
                     "images": len(frames)}
        print(f"recognizer {name}: {e2e[name]['ms_per_image']:.2f} ms/image")
    report["recognizer"] = e2e
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
