#!/usr/bin/env python3
"""Per-frame engine time of the stream: full recognition against the light per-frame call.

The stream used to run full recognition (plate detector, vehicle detector when a plate is seen,
OCR with the candidates beam) on every analysed frame; now each frame gets the light call (plate
detector + OCR) and the full work runs once per event (Recognizer.enrich). Both are timed here
in one process on the frames of the sample videos, alternating frame by frame (the order flips
each frame) so both see the same load. Prints p50/mean per side and writes a JSON report.

    PLATESTREAM_MODELS=../shared/models .venv/bin/python scripts/bench_light_ab.py \
        [--every 3] [--threads 1] [--precision fp32|int8|auto] [--out reports/light_ab.json]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine import Recognizer  # noqa: E402
from scripts.benchlib import write_report  # noqa: E402
from stream.cli import engine_settings  # noqa: E402


def frames(video: Path, every: int) -> list:
    import av

    with av.open(str(video)) as c:
        return [f.to_ndarray(format="bgr24") for i, f in enumerate(c.decode(video=0))
                if i % every == 0]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--every", type=int, default=3, help="take every Nth frame of each video")
    p.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads (the stream's "
                   "default on 2 cores: 2 workers x 1)")
    p.add_argument("--precision", choices=["auto", "fp32", "int8"], default=None)
    p.add_argument("--mmc", action="store_true")
    p.add_argument("--full-precision", choices=["auto", "fp32", "int8"], default=None,
                   help="run the full side in this precision (e.g. fp32: before vs after "
                   "int8 + light together); default: the same engine as the light side")
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "evaldata")
    p.add_argument("--out", type=Path, default=ROOT / "reports" / "light_ab.json")
    args = p.parse_args()
    os.environ.setdefault("PLATESTREAM_MODELS", str(ROOT.parent / "shared" / "models"))
    # flags > $PLATESTREAM_* > defaults, as the CLI fills them
    eng = engine_settings(argparse.Namespace(precision=args.precision))
    rec = Recognizer.from_models_dir(eng.models_dir, threads=args.threads,
                                     precision=eng.precision, int8_cache=eng.int8_cache_dir)
    images = [f for v in ("cars.mp4", "license_plate.mp4")
              for f in frames(args.data / "videos" / v, args.every)]
    full_rec = rec
    if args.full_precision:
        full_rec = Recognizer.from_models_dir(eng.models_dir, threads=args.threads,
                                              precision=args.full_precision,
                                              int8_cache=eng.int8_cache_dir)
    rec.recognize(images[0])
    full_rec.recognize(images[0])
    ms: dict[str, list[float]] = {"full": [], "light": []}
    with_plates = 0
    for i, img in enumerate(images):
        for side in (("full", "light") if i % 2 == 0 else ("light", "full")):
            t0 = time.perf_counter()
            engine = rec if side == "light" else full_rec
            res = engine.recognize_batch([img], (), args.mmc, None, light=side == "light")[0]
            ms[side].append((time.perf_counter() - t0) * 1000)
        with_plates += bool(res.results)
    report = {"frames": len(images), "frames_with_plates": with_plates, "threads": args.threads,
              "precision": rec.precision, "full_precision": full_rec.precision,
              "mmc": args.mmc,
              "load_avg": [round(x, 2) for x in os.getloadavg()]}
    for side, v in ms.items():
        report[side] = {"p50_ms": round(statistics.median(v), 2),
                        "mean_ms": round(statistics.mean(v), 2)}
    report["mean_ratio"] = round(report["light"]["mean_ms"] / report["full"]["mean_ms"], 3)
    print(f"{len(images)} frames ({with_plates} with plates), {rec.precision}, threads "
          f"{args.threads}: full p50 {report['full']['p50_ms']} / mean {report['full']['mean_ms']}"
          f" ms, light p50 {report['light']['p50_ms']} / mean {report['light']['mean_ms']} ms "
          f"(mean x{report['mean_ratio']}), load {report['load_avg']}")
    write_report(args.out, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
