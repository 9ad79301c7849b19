#!/usr/bin/env python3
"""Do plates read the same when H.264 is decoded without its deblocking filter (fast_decode)?

The two labelled videos are too few to say, so every labelled image (``endtoend.jsonl``: us,
eu, br) becomes a short camera-like clip: 2 s at 25 fps zooming slowly (8 %) towards the
image's centre, as a vehicle coming closer, encoded by libx264 as an IP camera does (I and P
frames only, one keyframe at the start, ``--crf``; 23-28 is a typical camera's quality).
Skipping the filter changes the reference pictures, so the error grows frame by frame until
the next keyframe: both decodes are read at ``--frames`` after the keyframe (default 12, 24
and 49: the clip's last frame, where they are furthest apart). Scored as
scripts/eval_accuracy.py scores (exact uppercase alphanumerics, O = 0 for us) against the
labels moved into that frame; plates the zoom takes out of the picture are left out of both.

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
from scripts.eval_accuracy import IOU_MATCH, iou, norm, pct, region_hint  # noqa: E402
from stream.cli import engine_settings  # noqa: E402
from stream.sources.decoding import FAST_DECODE_OPTIONS  # noqa: E402
from stream.tracking.best_read import best_read, read_weights  # noqa: E402
from stream.wire import plate_result  # noqa: E402

FRAMES = 50
FPS = 25
ZOOM = 1.08  # the last frame shows the central 1/ZOOM of the image, enlarged


def zoom_frames(img: np.ndarray, zoom: float, centre: tuple[float, float] | None = None
                ) -> tuple[list[np.ndarray], list[tuple[float, float, float]]]:
    """The clip's frames (even size), the picture growing to ``zoom``x around ``centre`` (the
    image's centre by default), and each frame's mapping of the image: x' = (x - x0) * z."""
    h, w = (d // 2 * 2 for d in img.shape[:2])
    img = img[:h, :w]
    cx, cy = centre or (w / 2, h / 2)
    frames, mappings = [], []
    for i in range(FRAMES):
        z = 1 + (zoom - 1) * i / (FRAMES - 1)
        x0, y0 = cx * (1 - 1 / z), cy * (1 - 1 / z)  # (cx, cy) stays in place
        m = np.float32([[z, 0, -x0 * z], [0, z, -y0 * z]])
        frames.append(cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR))
        mappings.append((x0, y0, z))
    return frames, mappings


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


def decoded(path: Path, fast: bool, positions: list[int]) -> dict[int, np.ndarray]:
    """The clip's frames at ``positions`` (BGR), decoded in full or without the filter."""
    out = {}
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.codec_context.thread_count = 1
        if fast:
            s.codec_context.options = dict(FAST_DECODE_OPTIONS)
        for i, frame in enumerate(c.decode(s)):
            if i in positions:
                out[i] = frame.to_ndarray(format="bgr24")
    return out


def moved_box(box: dict, mapping: tuple[float, float, float], w: int, h: int) -> dict | None:
    x0, y0, s = mapping
    b = {"xmin": (box["xmin"] - x0) * s, "xmax": (box["xmax"] - x0) * s,
         "ymin": (box["ymin"] - y0) * s, "ymax": (box["ymax"] - y0) * s}
    inside = b["xmin"] >= 0 and b["ymin"] >= 0 and b["xmax"] <= w and b["ymax"] <= h
    return {k: int(round(v)) for k, v in b.items()} if inside else None


def read(rec: Recognizer, img: np.ndarray, region: str) -> list[dict]:
    return [plate_result(r) for r in rec.recognize(img, regions=region_hint(region)).results]


def text_at(preds: list[dict], box: dict, region: str) -> str:
    ious = [iou(box, p["box"]) for p in preds]
    best = max(range(len(preds)), key=ious.__getitem__) if preds else -1
    return norm(preds[best]["plate"], region) if best >= 0 and ious[best] >= IOU_MATCH else ""


def evaluate(rec: Recognizer, data: Path, crf: int, positions: list[int], limit: int | None,
             tmp: Path) -> dict:
    rows = [json.loads(line) for line in open(data / "endtoend.jsonl")][:limit]
    # position -> region -> counts
    counts: dict[int, dict] = {p: defaultdict(lambda: defaultdict(int)) for p in positions}
    diffs: dict[int, list[float]] = defaultdict(list)
    changed: list[dict] = []
    for row in rows:
        region = row["region"]
        frames, mappings = zoom_frames(read_image_file(str(data / row["image"])), ZOOM)
        h, w = frames[0].shape[:2]
        clip = tmp / "clip.mp4"
        encode(frames, crf, clip)
        full, fast = decoded(clip, False, positions), decoded(clip, True, positions)
        for pos in positions:
            diffs[pos].append(float(np.abs(full[pos].astype(np.int16)
                                           - fast[pos].astype(np.int16)).mean()))
            preds = {"full": read(rec, full[pos], region), "fast": read(rec, fast[pos], region)}
            for gt in row["plates"]:
                c = counts[pos][region]
                box = moved_box(gt["box"], mappings[pos], w, h)
                if box is None:
                    c["out_of_picture"] += 1
                    continue
                truth = norm(gt.get("suggested_text") or gt["text"], region)
                reads = {k: text_at(v, box, region) for k, v in preds.items()}
                c["plates"] += 1
                c["exact_full"] += reads["full"] == truth
                c["exact_fast"] += reads["fast"] == truth
                if reads["full"] != reads["fast"]:
                    c["reads_changed"] += 1
                    changed.append({"image": row["image"], "frame": pos, "truth": truth, **reads})
    return {"crf": crf, "frames": {str(p): {
        "regions": _table(counts[p]),
        "mean_abs_pixel_difference": round(float(np.mean(diffs[p])), 2)} for p in positions},
        "changed": changed}


APPROACH = 1.6  # the approach clips: the plate 1.6x larger at the end, around its centre


def evaluate_events(rec: Recognizer, data: Path, crf: int, limit: int | None, tmp: Path) -> dict:
    """What overload does to a vehicle's event: its reads voted as the stream votes them
    (stream.tracking.best_read), at fps 5 (every 5th frame of the 25 fps clip), decoded in
    full, decoded fast, or decoded in full with every other sampled frame shed."""
    rows = [json.loads(line) for line in open(data / "endtoend.jsonl")][:limit]
    sampled = list(range(0, FRAMES, FPS // 5))
    variants = {"full": ("full", sampled), "fast": ("fast", sampled),
                "full, shed": ("full", sampled[::2])}
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in rows:
        region, gt = row["region"], row["plates"][0]  # the vehicle followed: the first plate
        b = gt["box"]
        frames, mappings = zoom_frames(read_image_file(str(data / row["image"])), APPROACH,
                                       ((b["xmin"] + b["xmax"]) / 2, (b["ymin"] + b["ymax"]) / 2))
        h, w = frames[0].shape[:2]
        clip = tmp / "clip.mp4"
        encode(frames, crf, clip)
        pics = {"full": decoded(clip, False, sampled), "fast": decoded(clip, True, sampled)}
        reads: dict[tuple[str, int], object] = {}
        for mode in pics:
            for pos in sampled:
                box = moved_box(b, mappings[pos], w, h)
                results = rec.recognize(pics[mode][pos], regions=region_hint(region)).results
                found = [(iou(box, plate_result(r)["box"]), r) for r in results] if box else []
                best = max(found, key=lambda x: x[0], default=(0.0, None))
                reads[mode, pos] = best[1] if best[0] >= IOU_MATCH else None
        truth = norm(gt.get("suggested_text") or gt["text"], region)
        c = counts[region]
        c["vehicles"] += 1
        for name, (mode, positions) in variants.items():
            got = [r for r in (reads[mode, p] for p in positions) if r is not None]
            won = best_read(got, weights=read_weights(got)) if got else None
            c[name] += won is not None and norm(won.plate, region) == truth
    table = {}
    for region in [*sorted(counts), "overall"]:
        c = counts[region] if region != "overall" else {
            k: sum(r[k] for r in counts.values()) for k in ("vehicles", *variants)}
        table[region] = {"vehicles": c["vehicles"],
                         **{f"exact_{k}_pct": pct(c[k], c["vehicles"]) for k in variants}}
    return {"crf": crf, "approach": APPROACH, "sampled_frames": sampled, "regions": table}


def _table(counts: dict) -> dict:
    keys = ("plates", "exact_full", "exact_fast", "reads_changed", "out_of_picture")
    table = {}
    for region in [*sorted(counts), "overall"]:
        c = counts[region] if region != "overall" else {
            k: sum(r[k] for r in counts.values()) for k in keys}
        full, fast = pct(c["exact_full"], c["plates"]), pct(c["exact_fast"], c["plates"])
        table[region] = {"plates": c["plates"], "exact_full_pct": full, "exact_fast_pct": fast,
                         "delta_points": round(fast - full, 2),
                         "reads_changed": c["reads_changed"],
                         "out_of_picture": c["out_of_picture"]}
    return table


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "evaldata")
    p.add_argument("--crf", type=int, nargs="+", default=[26], help="libx264 quality(ies)")
    p.add_argument("--frames", type=int, nargs="+", default=[12, 24, FRAMES - 1],
                   help="where in the GOP to read (frame numbers after the keyframe)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    p.add_argument("--limit", type=int, help="first N images only (smoke test)")
    p.add_argument("--events", action="store_true",
                   help="also the event level: approach clips voted as the stream votes")
    p.add_argument("--events-only", action="store_true", help="the event level only")
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
        runs = [] if args.events_only else [
            evaluate(rec, args.data, crf, args.frames, args.limit, Path(tmp)) for crf in args.crf]
        events = [evaluate_events(rec, args.data, crf, args.limit, Path(tmp))
                  for crf in args.crf] if args.events or args.events_only else []
    report = {"frames": FRAMES, "fps": FPS, "zoom": ZOOM, "keyframes": "first frame only",
              "read_at": args.frames, "precision": rec.precision,
              "decode_options_fast": FAST_DECODE_OPTIONS, "runs": runs, "events": events,
              "seconds": round(time.monotonic() - t0, 1)}
    for run in runs:
        print(f"\ncrf {run['crf']}: exact reads, full decode -> fast, by frame after the keyframe")
        print("| frame | mean abs pixel difference | " + " | ".join(
            run["frames"][str(args.frames[0])]["regions"]) + " | reads changed |")
        print("|---|---|" + "---|" * (len(run["frames"][str(args.frames[0])]["regions"]) + 1))
        for pos, f in run["frames"].items():
            cells = [f"{r['exact_full_pct']} -> {r['exact_fast_pct']} ({r['delta_points']:+})"
                     for r in f["regions"].values()]
            print(f"| {pos} | {f['mean_abs_pixel_difference']} | " + " | ".join(cells)
                  + f" | {f['regions']['overall']['reads_changed']} |")
    for ev in events:
        print(f"\ncrf {ev['crf']}, events (approach clips, fps 5, the stream's vote): exact %")
        print("| region | vehicles | full decode | fast | full, every other frame shed |")
        print("|---|---|---|---|---|")
        for region, r in ev["regions"].items():
            print(f"| {region} | {r['vehicles']} | {r['exact_full_pct']} | "
                  f"{r['exact_fast_pct']} | {r['exact_full, shed_pct']} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"report: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
