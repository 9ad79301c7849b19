#!/usr/bin/env python3
"""Do plates read the same when H.264 is decoded without its deblocking filter (fast_decode)?

The two labelled videos are too few to say, so every labelled image (``endtoend.jsonl``: us,
eu, br) becomes a short camera-like clip: 2 s at 25 fps zooming slowly (8 %) towards the
image's centre, as a vehicle coming closer, encoded by libx264 as an IP camera does (I and P
frames only, one keyframe at the start, ``--crf``; 23-28 is a typical camera's quality).
Skipping the filter changes the reference pictures, so the error grows frame by frame until
the next keyframe: the clip's last frame, 49 P frames on, is where the two decodes are
furthest apart, and both are read there. Scored as scripts/eval_accuracy.py scores (exact
uppercase alphanumerics, O = 0 for us) against the labels moved into the last frame; plates
the zoom takes out of the picture are left out of both.

Prints a table per region and writes a JSON report:

    PLATESTREAM_MODELS=../shared/models .venv/bin/python scripts/eval_fast_decode.py \
        [--crf 26 30] [--limit N] [--out docs/perf/eval_fast_decode.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import av  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402

from engine import Recognizer, read_image_file  # noqa: E402
from scripts.eval_accuracy import IOU_MATCH, iou, norm, pct  # noqa: E402
from stream.cli import engine_settings  # noqa: E402
from stream.sources.decoding import FAST_DECODE_OPTIONS  # noqa: E402
from stream.wire import plate_result  # noqa: E402

FRAMES = 50
FPS = 25
ZOOM = 1.08  # the last frame shows the central 1/ZOOM of the image, enlarged


def zoom_frames(img: np.ndarray) -> tuple[list[np.ndarray], tuple[float, float, float]]:
    """The clip's frames (even size) and the last frame's mapping: x' = (x - x0) * s."""
    h, w = (d // 2 * 2 for d in img.shape[:2])
    img = img[:h, :w]
    frames = []
    for i in range(FRAMES):
        z = 1 + (ZOOM - 1) * i / (FRAMES - 1)
        cw, ch = w / z, h / z
        x0, y0 = (w - cw) / 2, (h - ch) / 2
        m = np.float32([[z, 0, -x0 * z], [0, z, -y0 * z]])
        frames.append(cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR))
    return frames, (x0, y0, z)


def encode(frames: list[np.ndarray], crf: int, path: Path) -> None:
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=FPS)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.options = {"preset": "veryfast", "crf": str(crf),
                      "x264-params": f"keyint={FRAMES}:min-keyint={FRAMES}:scenecut=0:bframes=0"}
        for i, img in enumerate(frames):
            f = av.VideoFrame.from_ndarray(img, format="bgr24")
            f.pts, f.time_base = i, Fraction(1, FPS)
            for p in vs.encode(f):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)


def last_frame(path: Path, fast: bool) -> np.ndarray:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.codec_context.thread_count = 1
        if fast:
            s.codec_context.options = dict(FAST_DECODE_OPTIONS)
        frame = None
        for frame in c.decode(s):
            pass
        return frame.to_ndarray(format="bgr24")


def moved_box(box: dict, mapping: tuple[float, float, float], w: int, h: int) -> dict | None:
    x0, y0, s = mapping
    b = {"xmin": (box["xmin"] - x0) * s, "xmax": (box["xmax"] - x0) * s,
         "ymin": (box["ymin"] - y0) * s, "ymax": (box["ymax"] - y0) * s}
    inside = b["xmin"] >= 0 and b["ymin"] >= 0 and b["xmax"] <= w and b["ymax"] <= h
    return {k: int(round(v)) for k, v in b.items()} if inside else None


def read(rec: Recognizer, img: np.ndarray, region: str) -> list[dict]:
    hint = {"us": ["us"], "br": ["br"]}.get(region, [])
    return [plate_result(r) for r in rec.recognize(img, regions=hint).results]


def text_at(preds: list[dict], box: dict, region: str) -> str:
    ious = [iou(box, p["box"]) for p in preds]
    best = max(range(len(preds)), key=ious.__getitem__) if preds else -1
    return norm(preds[best]["plate"], region) if best >= 0 and ious[best] >= IOU_MATCH else ""


def evaluate(rec: Recognizer, data: Path, crf: int, limit: int | None, tmp: Path) -> dict:
    rows = [json.loads(line) for line in open(data / "endtoend.jsonl")][:limit]
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    diffs: list[float] = []
    changed: list[dict] = []
    for row in rows:
        region = row["region"]
        frames, mapping = zoom_frames(read_image_file(str(data / row["image"])))
        h, w = frames[0].shape[:2]
        clip = tmp / "clip.mp4"
        encode(frames, crf, clip)
        full, fast = last_frame(clip, False), last_frame(clip, True)
        diffs.append(float(np.abs(full.astype(np.int16) - fast.astype(np.int16)).mean()))
        preds = {"full": read(rec, full, region), "fast": read(rec, fast, region)}
        for gt in row["plates"]:
            box = moved_box(gt["box"], mapping, w, h)
            if box is None:
                counts[region]["out_of_picture"] += 1
                continue
            truth = norm(gt.get("suggested_text") or gt["text"], region)
            reads = {k: text_at(v, box, region) for k, v in preds.items()}
            c = counts[region]
            c["plates"] += 1
            c["exact_full"] += reads["full"] == truth
            c["exact_fast"] += reads["fast"] == truth
            if reads["full"] != reads["fast"]:
                c["reads_changed"] += 1
                changed.append({"image": row["image"], "truth": truth, **reads})
    table = {}
    for region in [*sorted(counts), "overall"]:
        c = counts[region] if region != "overall" else {
            k: sum(r[k] for r in counts.values()) for k in
            ("plates", "exact_full", "exact_fast", "reads_changed", "out_of_picture")}
        table[region] = {
            "plates": c["plates"], "exact_full_pct": pct(c["exact_full"], c["plates"]),
            "exact_fast_pct": pct(c["exact_fast"], c["plates"]),
            "delta_points": round(pct(c["exact_fast"], c["plates"])
                                  - pct(c["exact_full"], c["plates"]), 2),
            "reads_changed": c["reads_changed"], "out_of_picture": c["out_of_picture"]}
    return {"crf": crf, "regions": table, "changed": changed,
            "mean_abs_pixel_difference": round(float(np.mean(diffs)), 2),
            "max_abs_pixel_difference": round(float(np.max(diffs)), 2)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "evaldata")
    p.add_argument("--crf", type=int, nargs="+", default=[26], help="libx264 quality(ies)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    p.add_argument("--limit", type=int, help="first N images only (smoke test)")
    p.add_argument("--out", type=Path, default=ROOT / "reports" / "eval_fast_decode.json")
    args = p.parse_args()
    if not (args.data / "endtoend.jsonl").is_file():
        print(f"eval_fast_decode: no endtoend.jsonl in {args.data} (use --data)", file=sys.stderr)
        return 2
    eng = engine_settings(argparse.Namespace(models_dir=None, precision=None,
                                             detector_input=None))
    rec = Recognizer.from_models_dir(eng.models_dir, threads=args.threads,
                                     precision=eng.precision, int8_cache=eng.int8_cache_dir,
                                     detector_input=eng.detector_input)
    import tempfile

    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="eval_fast_decode_") as tmp:
        runs = [evaluate(rec, args.data, crf, args.limit, Path(tmp)) for crf in args.crf]
    report = {"frames": FRAMES, "fps": FPS, "zoom": ZOOM, "keyframes": "first frame only",
              "read_at": f"frame {FRAMES - 1} (the end of the GOP)", "precision": rec.precision,
              "decode_options_fast": FAST_DECODE_OPTIONS, "runs": runs,
              "seconds": round(time.monotonic() - t0, 1)}
    for run in runs:
        print(f"\ncrf {run['crf']}: mean |full - fast| {run['mean_abs_pixel_difference']} "
              f"grey levels (max {run['max_abs_pixel_difference']}) at the end of the GOP")
        print("| region | plates | exact, full decode % | exact, fast % | delta (points) "
              "| reads changed |")
        print("|---|---|---|---|---|---|")
        for region, r in run["regions"].items():
            print(f"| {region} | {r['plates']} | {r['exact_full_pct']} | {r['exact_fast_pct']} "
                  f"| {r['delta_points']:+} | {r['reads_changed']} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"report: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
