#!/usr/bin/env python3
"""The detectors alone, side by side in one process: exported square input against the input
fitted to the frame (engine/backends/fitted.py), fp32 against int8, and one batched call for
several frames against one call per frame.

Frames are every 10th of the 1080p25 benchmark clip (scripts/bench_stream.py makes it),
scaled to the stream's analysis width (1280x720), so the fitted input is 256x416. Every
variant runs on every frame in turn (same load for all), on 1 ONNX Runtime thread: the stream's
default on 2 cores is 2 engine workers x 1 thread. Prints a table and writes JSON.

    PLATESTREAM_MODELS=../shared/models .venv/bin/python scripts/bench_detectors.py \
        [--frames 30] [--rounds 3] [--out reports/bench_detectors.json]

Needs the int8 plate detector (``platestream models quantize``) for the int8 rows.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine import models, quantize  # noqa: E402
from engine.backends.fitted import fitted_graph  # noqa: E402
from engine.backends.onnxruntime import OrtBackend  # noqa: E402
from engine.plates import process as plate_process  # noqa: E402
from engine.vehicles import process as vehicle_process  # noqa: E402
from scripts.benchlib import write_report  # noqa: E402
from stream.cli import engine_settings  # noqa: E402


def frames(n: int) -> list[np.ndarray]:
    import av

    from scripts.bench_stream import clip_1080p

    out = []
    with av.open(str(clip_1080p())) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i % 10 == 0:
                out.append(f.to_ndarray(format="bgr24", width=1280, height=720))
            if len(out) >= n:
                break
    return out


def p50(xs: list[float]) -> float:
    return round(statistics.median(xs) * 1000, 2)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "bench_detectors.json")
    args = ap.parse_args()
    eng = engine_settings(argparse.Namespace())
    mdir = models.resolve_models_dir(eng.models_dir)
    plate = models.model_path(models.PLATE_DETECTOR, mdir)
    vehicle = models.model_path(models.VEHICLE_DETECTOR, mdir)
    int8 = quantize.int8_path(models.PLATE_DETECTOR, plate,
                              quantize.int8_cache_dir(eng.int8_cache_dir))
    imgs = frames(args.frames)
    fit = (256, 416)
    sq = (416, 416)

    def session(path: Path, canvas: tuple[int, int]) -> OrtBackend:
        return OrtBackend(path, 1, graph=None if canvas == sq else fitted_graph(path, canvas))

    variants: dict[str, tuple[OrtBackend, object, tuple[int, int]]] = {}
    for prec, path in (("fp32", plate), ("int8", int8)):
        if path is None:
            print("no int8 plate detector in the cache: run `platestream models quantize`")
            continue
        for name, canvas in (("square", sq), ("fit", fit)):
            variants[f"plate {prec} {name}"] = (session(path, canvas), plate_process, canvas)
    for name, canvas in (("square", sq), ("fit", fit)):
        variants[f"vehicle fp32 {name}"] = (session(vehicle, canvas), vehicle_process, canvas)
    feeds = {k: [{next(iter(b.inputs())): proc.preprocess(im, c)[0]} for im in imgs]
             for k, (b, proc, c) in variants.items()}
    times: dict[str, list[float]] = {k: [] for k in variants}
    for r in range(args.rounds + 1):  # round 0 warms up
        for i in range(len(imgs)):
            for k, (b, _, _) in variants.items():
                t0 = time.perf_counter()
                b.infer(feeds[k][i])
                if r:
                    times[k].append(time.perf_counter() - t0)
    rows = [{"variant": k, "p50_ms": p50(v)} for k, v in times.items()]
    base = {r["variant"]: r["p50_ms"] for r in rows}
    for r in rows:
        model, prec, _ = r["variant"].split()
        r["vs_fp32_square"] = round(r["p50_ms"] / base[f"{model} fp32 square"], 3)

    # one call for B frames (a batch-dynamic copy of the fitted graph) against B calls
    from trt_builder.onnx_batch import make_batch_dynamic

    batch_rows = []
    for prec, path in (("fp32", plate), ("int8", int8)):
        if path is None:
            continue
        tmp = Path(tempfile.mkdtemp()) / "fitted.onnx"
        tmp.write_bytes(fitted_graph(path, fit))
        xs = [f["images"] for f in feeds[f"plate {prec} fit"]]
        dyn = make_batch_dynamic(tmp, xs[:4])
        if dyn.model is None:
            print(f"batch: {prec}: {dyn.reason}")
            continue
        single = OrtBackend(tmp, 1)
        batched = OrtBackend(tmp, 1, graph=dyn.model)
        for bsz in (b for b in (2, 4) if b <= len(xs)):  # --frames 2 has no batch of 4
            sep, one = [], []
            for _ in range(args.rounds):
                for i in range(0, len(xs) - bsz + 1, bsz):
                    t0 = time.perf_counter()
                    for x in xs[i:i + bsz]:
                        single.infer({"images": x})
                    sep.append(time.perf_counter() - t0)
                    t0 = time.perf_counter()
                    batched.infer({"images": np.concatenate(xs[i:i + bsz])})
                    one.append(time.perf_counter() - t0)
            batch_rows.append({"precision": prec, "batch": bsz, "separate_p50_ms": p50(sep),
                               "batched_p50_ms": p50(one),
                               "ratio": round(statistics.median(one) / statistics.median(sep),
                                              3)})
    report = {"frames": len(imgs), "rounds": args.rounds, "threads": 1,
              "fitted_canvas": list(fit), "variants": rows, "batch": batch_rows,
              "load_avg": [round(x, 2) for x in os.getloadavg()], "cpu_count": os.cpu_count()}
    print("| model | precision | input | p50 ms | vs fp32 square |")
    print("|---|---|---|---|---|")
    for r in rows:
        model, prec, name = r["variant"].split()
        shape = "416x416" if name == "square" else f"{fit[1]}x{fit[0]}"
        print(f"| {model} | {prec} | {shape} | {r['p50_ms']} | {r['vs_fp32_square']} |")
    print("\n| plate detector | batch | B calls p50 ms | one call p50 ms | ratio |")
    print("|---|---|---|---|---|")
    for b in batch_rows:
        print(f"| {b['precision']} fit | {b['batch']} | {b['separate_p50_ms']} | "
              f"{b['batched_p50_ms']} | {b['ratio']} |")
    print(f"load average {report['load_avg']}")
    write_report(args.out, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
