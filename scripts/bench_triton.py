#!/usr/bin/env python3
"""Per-image latency through Triton vs local ONNX Runtime, side by side, and their parity.

Exports the repository (``platestream models export-triton --device cpu``), serves it on a
real Triton server on 127.0.0.1 (PyTriton's tritonserver, scripts/triton_serve_onnx.py, in
.venv-triton) and reads the same dev images with ``backend: onnxruntime`` (in this process)
and ``backend: triton`` (over gRPC), alternating image by image so both sides see the same
machine load. Both use the same ONNX Runtime thread count, so the difference is the
transport (serialisation, gRPC on loopback, Triton's scheduler and Python backend), which is
what a CPU node pays to hand its models to a GPU server, before the GPU's gain.

    PLATESTREAM_MODELS=../shared/models .venv/bin/python scripts/bench_triton.py --images 24

Parity per image: same plates (text), box corners within 1 px, same vehicle type/box.
Writes reports/bench_triton.json (with the load average before and after).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.benchlib import latency_summary, write_report  # noqa: E402


def _launcher():
    spec = importlib.util.spec_from_file_location("triton_serve_onnx",
                                                  ROOT / "scripts" / "triton_serve_onnx.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def _box_diff(a, b) -> int:
    return max(abs(getattr(a, k) - getattr(b, k)) for k in ("xmin", "ymin", "xmax", "ymax"))


def parity(local, remote) -> dict:
    """How far the Triton result is from the local one, for one image."""
    same_plates = [r.plate for r in local.results] == [r.plate for r in remote.results]
    box = veh = 0
    score = 0.0
    vehicle_types_same = True
    if same_plates:
        for x, y in zip(local.results, remote.results, strict=True):
            box = max(box, _box_diff(x.box, y.box))
            score = max(score, abs(x.score - y.score))
            if (x.vehicle is None) != (y.vehicle is None):
                vehicle_types_same = False
            elif x.vehicle is not None:
                vehicle_types_same &= x.vehicle.type == y.vehicle.type
                veh = max(veh, _box_diff(x.vehicle.box, y.vehicle.box))
    ok = same_plates and box <= 1 and veh <= 1 and vehicle_types_same
    return {"plates": [r.plate for r in local.results], "same_plates": same_plates,
            "max_box_diff_px": box, "max_vehicle_box_diff_px": veh,
            "max_score_diff": round(score, 5), "same_vehicle_types": vehicle_types_same,
            "match": ok}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=24, help="dev images (spread over regions)")
    ap.add_argument("--rounds", type=int, default=3, help="timed reads per image and side")
    ap.add_argument("--threads", type=int, default=2, help="ONNX Runtime threads per model run "
                    "(both sides)")
    ap.add_argument("--mmc", action="store_true", help="also run the vehicle detector always")
    ap.add_argument("--out", default="reports/bench_triton.json")
    args = ap.parse_args()

    from engine import Recognizer, read_image_file
    from engine.backends.triton import TritonSettings
    from engine.backends.triton_repo import export_triton
    from engine.models import resolve_models_dir
    from stream.cli import engine_settings

    # the engine reads no environment: $PLATESTREAM_MODELS as the CLI reads it
    models_dir = resolve_models_dir(engine_settings(argparse.Namespace()).models_dir)
    data = Path(os.environ.get("PLATESTREAM_EVALDATA", ROOT.parent / "shared" / "evaldata"))
    rows = [json.loads(line) for line in open(data / "endtoend.jsonl")]
    step = max(1, len(rows) // max(1, args.images))
    rows = rows[::step][: args.images]
    images = [(r["image"], read_image_file(data / r["image"])) for r in rows]

    load_before = os.getloadavg()
    mod = _launcher()
    with tempfile.TemporaryDirectory(prefix="bench-triton-") as tmp:
        repo = Path(tmp) / "repo"
        export_triton(repo, models_dir, device="cpu")
        server = mod.TritonProcess(repo, threads=args.threads, log_path=Path(tmp) / "triton.log")
        try:
            t0 = time.monotonic()
            server.start()
            startup_s = time.monotonic() - t0
            # fp32 on both sides: Triton serves the fp32 models (the int8 copies of
            # `models quantize` are a CPU option, not exported)
            local = Recognizer.from_models_dir(models_dir, threads=args.threads,
                                               backend="onnxruntime", precision="fp32",
                                               detector_input="square")
            remote = Recognizer.from_models_dir(models_dir, backend="triton",
                                                triton=TritonSettings(url=server.url))
            for _, img in images[:2]:  # warm-up: sessions, gRPC channel, Triton's instances
                local.recognize(img, mmc=args.mmc)
                remote.recognize(img, mmc=args.mmc)
            times: dict[str, list[float]] = {"onnxruntime": [], "triton": []}
            per_image = []
            for name, img in images:
                best: dict[str, list[float]] = {"onnxruntime": [], "triton": []}
                results = {}
                for _ in range(args.rounds):  # alternate: both sides see the same load
                    for side, rec in (("onnxruntime", local), ("triton", remote)):
                        t = time.perf_counter()
                        results[side] = rec.recognize(img, mmc=args.mmc)
                        best[side].append((time.perf_counter() - t) * 1000)
                row = {"image": name,
                       **{f"{s}_ms": round(statistics.median(v), 2) for s, v in best.items()},
                       **parity(results["onnxruntime"], results["triton"])}
                for s in times:
                    times[s].append(statistics.median(best[s]))
                per_image.append(row)
                print(f"{name:60s} ort {row['onnxruntime_ms']:7.1f} ms  triton "
                      f"{row['triton_ms']:7.1f} ms  plates {','.join(row['plates']) or '-':20s} "
                      f"{'match' if row['match'] else 'DIFF'}", flush=True)
            status = remote.backend_status()
        finally:
            server.stop()
    load_after = os.getloadavg()
    lat = {s: latency_summary(v) for s, v in times.items()}
    lat["triton_over_onnxruntime_p50"] = round(lat["triton"]["p50_ms"] /
                                               lat["onnxruntime"]["p50_ms"], 3)
    par = {
        "images": len(per_image),
        "images_matching": sum(r["match"] for r in per_image),
        "plates": sum(len(r["plates"]) for r in per_image),
        "same_plates": sum(r["same_plates"] for r in per_image),
        "max_box_diff_px": max(r["max_box_diff_px"] for r in per_image),
        "max_vehicle_box_diff_px": max(r["max_vehicle_box_diff_px"] for r in per_image),
        "max_score_diff": max(r["max_score_diff"] for r in per_image),
    }
    report = {
        "what": "per-image latency, backend onnxruntime (local) vs triton (PyTriton tritonserver "
                "on 127.0.0.1, ONNX Runtime inside its Python backend), same images alternated",
        "machine": {"cpus": os.cpu_count(), "loadavg_before": [round(x, 2) for x in load_before],
                    "loadavg_after": [round(x, 2) for x in load_after]},
        "settings": {"threads": args.threads, "rounds": args.rounds, "mmc": args.mmc,
                     "precision": "fp32"},
        "triton_startup_s": round(startup_s, 1),
        "latency": lat,
        "parity": par,
        "triton_status": status,
        "per_image": per_image,
    }
    print(json.dumps({"latency": lat, "parity": par, "machine": report["machine"]}, indent=2))
    write_report(args.out, report)
    return 0 if par["images_matching"] == par["images"] else 1


if __name__ == "__main__":
    sys.exit(main())
