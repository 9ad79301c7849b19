#!/usr/bin/env python3
"""fp32 against int8 in ONE process, image by image: the int8 gain without the load drift.

On a shared machine the load moves by 2x within minutes, so two timings made minutes apart
(even bench_latency_ab.py's alternating subprocess rounds) can differ more than int8 does. Here
both engines are loaded in the same process and every image is recognised by one then the other
(the order flips each image), so both see the same load. Reports p50/mean per side and the
ratio, per mode (default config, ``fast``) and thread count, plus on how many images the reads
are the same. Needs the int8 models (``platestream models quantize``).

    PLATESTREAM_MODELS=../shared/models .venv/bin/python scripts/bench_precision_ab.py \
        [--threads 1,2] [--limit 120] [--out reports/precision_ab.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine import Recognizer, read_image_file  # noqa: E402
from scripts.benchlib import write_report  # noqa: E402
from stream.cli import engine_settings  # noqa: E402


def run(threads: int, mode: str, rows: list[dict], images: list) -> dict:
    config = {"mode": mode} if mode != "normal" else {}
    eng = engine_settings(argparse.Namespace())  # $PLATESTREAM_MODELS / _INT8_CACHE, as the CLI
    recs = {p: Recognizer.from_models_dir(eng.models_dir, threads=threads, precision=p,
                                          int8_cache=eng.int8_cache_dir)
            for p in ("fp32", "int8")}
    for r in recs.values():
        r.recognize(images[0], config=config)
    ms: dict[str, list[float]] = {"fp32": [], "int8": []}
    same = 0
    for i, (image, row) in enumerate(zip(images, rows, strict=True)):
        hint = {"us": ["us"], "br": ["br"]}.get(row["region"], [])
        reads = {}
        for p in (("fp32", "int8") if i % 2 == 0 else ("int8", "fp32")):
            t0 = time.perf_counter()
            res = recs[p].recognize(image, hint, config=config)
            ms[p].append((time.perf_counter() - t0) * 1000)
            reads[p] = sorted(x.plate for x in res.results)
        same += reads["fp32"] == reads["int8"]
    out = {"threads": threads, "mode": mode, "images": len(images), "same_reads": same,
           "load_avg": [round(x, 2) for x in os.getloadavg()]}
    for p in ms:
        out[p] = {"p50_ms": round(statistics.median(ms[p]), 2),
                  "mean_ms": round(statistics.mean(ms[p]), 2)}
    out["p50_ratio"] = round(out["int8"]["p50_ms"] / out["fp32"]["p50_ms"], 3)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", default="1,2", help="comma-separated intra-op thread counts")
    p.add_argument("--modes", default="normal,fast")
    p.add_argument("--limit", type=int, default=None, help="first N evaluation images")
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "evaldata")
    p.add_argument("--out", type=Path, default=ROOT / "reports" / "precision_ab.json")
    args = p.parse_args()
    os.environ.setdefault("PLATESTREAM_MODELS", str(ROOT.parent / "shared" / "models"))
    rows = [json.loads(line) for line in open(args.data / "endtoend.jsonl")][: args.limit]
    images = [read_image_file(args.data / r["image"]) for r in rows]
    results = []
    for t in (int(x) for x in args.threads.split(",")):
        for mode in args.modes.split(","):
            r = run(t, mode, rows, images)
            results.append(r)
            print(f"threads {t} mode {mode}: fp32 p50 {r['fp32']['p50_ms']} ms, int8 p50 "
                  f"{r['int8']['p50_ms']} ms (x{r['p50_ratio']}), same reads "
                  f"{r['same_reads']}/{r['images']}, load {r['load_avg']}", flush=True)
    write_report(args.out, {"results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
