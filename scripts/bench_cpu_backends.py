#!/usr/bin/env python3
"""ONNX Runtime against OpenVINO on the CPU, side by side: each model alone (1 thread, the
stream's inputs), whole images (the snapshot API's default and fast modes) and memory.

The runtimes alternate model by model and image by image, so both see the same load. Each
backend also runs once in a fresh process to report its start (models loaded and the first
image read) and resident memory after it. Prints tables and writes JSON.

    PLATESTREAM_MODELS=../shared/models .venv/bin/python scripts/bench_cpu_backends.py \
        [--images 40] [--rounds 2] [--out reports/bench_cpu_backends.json]

ONNX Runtime runs at ``precision: auto`` (int8 where ``platestream models quantize`` built it),
OpenVINO at its auto (bf16 on a CPU with AMX or AVX-512 BF16). Needs ``pip install
platestream[openvino]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.benchlib import rss_mb, write_report  # noqa: E402

BACKENDS = ("onnxruntime", "openvino")


def _recognizer(backend: str, threads: int):
    from engine import Recognizer

    return Recognizer.from_models_dir(os.environ.get("PLATESTREAM_MODELS"), backend=backend,
                                      threads=threads)


def models_alone(rounds: int) -> dict:
    """ms per call of each model on 1 thread, median of ``rounds`` x 7 rounds of 10 calls."""
    recs = {b: _recognizer(b, 1) for b in BACKENDS}
    rng = np.random.default_rng(0)
    feeds = {}
    for b, rec in recs.items():
        plates = rec.plates.fitted.session((256, 416))[1]
        cases = {
            "plate detector 256x416": (plates, {"images": rng.random((1, 3, 256, 416),
                                                                     np.float32)}),
            "OCR, 2 crops": (rec.ocr.backend, {next(iter(rec.ocr.backend.inputs())): rng.integers(
                0, 255, (2, 64, 128, 3), dtype=np.uint8)}),
            "vehicle detector 416x416": (rec.vehicles.backend, {"images": rng.random(
                (1, 3, 416, 416), np.float32)}),
        }
        feeds[b] = cases
    times: dict[str, dict[str, list[float]]] = {c: {b: [] for b in BACKENDS}
                                                for c in feeds[BACKENDS[0]]}
    for case in times:
        for b in BACKENDS:
            backend, feed = feeds[b][case]
            for _ in range(3):
                backend.infer(feed)
        for _ in range(7 * rounds):
            for b in BACKENDS:
                backend, feed = feeds[b][case]
                t0 = time.perf_counter()
                for _ in range(10):
                    backend.infer(feed)
                times[case][b].append((time.perf_counter() - t0) * 100)
    return {"precision": {b: recs[b].precision for b in BACKENDS},
            "ms_per_call": {c: {b: round(statistics.median(v[b]), 2) for b in BACKENDS}
                            for c, v in times.items()}}


def images(n: int, rounds: int, threads: int) -> dict:
    """p50 ms per image, default and fast mode, over ``n`` dev images, alternating."""
    from engine import read_image_file

    data = ROOT.parent / "shared" / "evaldata"
    rows = [json.loads(line) for line in (data / "endtoend.jsonl").open()]
    imgs = [read_image_file(data / r["image"]) for r in rows[::max(1, len(rows) // n)][:n]]
    recs = {b: _recognizer(b, threads) for b in BACKENDS}
    for rec in recs.values():  # every image's canvas compiled before timing
        for img in imgs:
            rec.recognize(img)
            rec.recognize(img, config={"mode": "fast"})
    ms = {m: {b: [] for b in BACKENDS} for m in ("normal", "fast")}
    for _ in range(rounds):
        for img in imgs:
            for mode in ms:
                for b, rec in recs.items():
                    t0 = time.perf_counter()
                    rec.recognize(img, config={"mode": mode})
                    ms[mode][b].append((time.perf_counter() - t0) * 1000)
    return {"images": len(imgs), "threads": threads,
            "p50_ms": {m: {b: round(statistics.median(v[b]), 1) for b in BACKENDS}
                       for m, v in ms.items()}}


def start_and_memory(backend: str, threads: int) -> dict:
    """In this (fresh) process: seconds to load the models and read a first image, and the
    resident memory after it and after a second thread has read one too."""
    import threading

    from engine import read_image_file

    img = read_image_file(ROOT.parent / "shared" / "evaldata" / "images" / "eu" / "eu1.jpg")
    t0 = time.perf_counter()
    rec = _recognizer(backend, threads)
    loaded = time.perf_counter()
    rec.recognize(img)
    first = time.perf_counter()
    one = rss_mb()
    thread = threading.Thread(target=rec.recognize, args=(img,))
    thread.start()
    thread.join()
    return {"load_s": round(loaded - t0, 2), "first_image_s": round(first - loaded, 2),
            "rss_mb": round(one, 1), "rss_mb_second_thread": round(rss_mb(), 1)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=40, help="dev images for the per-image rows")
    p.add_argument("--rounds", type=int, default=2, help="passes over the models and images")
    p.add_argument("--threads", type=int, default=1, help="threads per model run for whole "
                   "images (the engine's default on 2 cores with 2 workers: 1)")
    p.add_argument("--out", type=Path, default=ROOT / "reports" / "bench_cpu_backends.json")
    p.add_argument("--one", choices=BACKENDS, help=argparse.SUPPRESS)  # internal: start+memory
    args = p.parse_args()
    os.environ.setdefault("PLATESTREAM_MODELS", str(ROOT.parent / "shared" / "models"))
    if args.one:
        print(json.dumps(start_and_memory(args.one, args.threads)))
        return 0
    start = {}
    for b in BACKENDS:
        out = subprocess.run([sys.executable, __file__, "--one", b, "--threads",
                              str(args.threads)], capture_output=True, text=True)
        if out.returncode != 0:
            print(out.stderr[-3000:], file=sys.stderr)
            return 1
        start[b] = json.loads(out.stdout.strip().splitlines()[-1])
    alone = models_alone(args.rounds)
    whole = images(args.images, args.rounds, args.threads)
    print(f"precision: {alone['precision']}")
    print("| model (1 thread) | " + " | ".join(f"{b} ms" for b in BACKENDS) + " | ratio |")
    print("|---|---|---|---|")
    for case, v in alone["ms_per_call"].items():
        print(f"| {case} | {v['onnxruntime']} | {v['openvino']} | "
              f"{v['openvino'] / v['onnxruntime']:.2f} |")
    for mode, v in whole["p50_ms"].items():
        print(f"| image, {mode} mode, p50 ({whole['images']} images) | {v['onnxruntime']} | "
              f"{v['openvino']} | {v['openvino'] / v['onnxruntime']:.2f} |")
    for key, what in (("load_s", "models loaded, s"), ("first_image_s", "first image, s"),
                      ("rss_mb", "RSS after it, MB"),
                      ("rss_mb_second_thread", "RSS after a 2nd thread's image, MB")):
        print(f"| {what} | {start['onnxruntime'][key]} | {start['openvino'][key]} | |")
    write_report(args.out, {
        "script": "scripts/bench_cpu_backends.py", "at": time.strftime("%Y-%m-%d %H:%M:%S"),
        "models_alone": alone, "images": whole, "start_and_memory": start,
        "load_avg": [round(x, 2) for x in os.getloadavg()]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
