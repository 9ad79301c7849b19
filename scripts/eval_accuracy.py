#!/usr/bin/env python3
"""Accuracy and speed of the engine on the labelled evaluation data.

End to end (``endtoend.jsonl``): per region and overall, exact plate match, plate box recall
at IoU >= 0.5, false plates per image, and ms per image. OCR alone (``crops.jsonl``): exact
match on plate crops, and on two-line plates made from them (``two_line_plate``). Prints
tables and writes a JSON report; ``--compare OLD.json`` shows the change against a saved
report, and the confusion tables list which characters get misread.

Scoring: texts are compared as uppercase alphanumerics; O and 0 are equal for ``us`` labels
(the data README: US labels never use the letter O). EU labels flagged ``suspect_label`` are
scored against their ``suggested_text``.

Usage:
    PLATESTREAM_MODELS=../shared/models python scripts/eval_accuracy.py \
        [--data ../shared/evaldata] [--out reports/eval_accuracy.json] [--compare OLD.json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

from rapidfuzz.distance import Levenshtein

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

import engine.recognizer  # noqa: E402
from engine import Recognizer, geometry, read_image_file  # noqa: E402
from engine.backends.select import PREFERENCES  # noqa: E402
from engine.formats import read_with_formats  # noqa: E402
from engine.precision import PRECISIONS  # noqa: E402
from stream.cli import engine_settings  # noqa: E402
from stream.wire import box_json, plate_result  # noqa: E402

IOU_BOX = 0.5    # box recall threshold (the definition)
IOU_MATCH = 0.3  # a prediction "is" the labelled plate for text scoring (boxes run larger)


def norm(text: str, region: str) -> str:
    text = re.sub(r"[^A-Z0-9]", "", text.upper())
    return text.replace("O", "0") if region == "us" else text


def region_hint(region: str) -> list[str]:
    """The ``regions`` a client of this data's region would send (eu plates: none)."""
    return {"us": ["us"], "br": ["br"]}.get(region, [])


def iou(a: dict, b: dict) -> float:
    def xyxy(r: dict) -> tuple[int, int, int, int]:
        return r["xmin"], r["ymin"], r["xmax"], r["ymax"]

    return float(geometry.iou(xyxy(a), [xyxy(b)])[0])


def confusions(truth: str, read: str) -> list[tuple[str, str]]:
    """Character substitutions/insertions/deletions turning ``truth`` into ``read``."""
    out = []
    for op, i, j in Levenshtein.editops(truth, read):
        if op == "replace":
            out.append((truth[i], read[j]))
        elif op == "delete":
            out.append((truth[i], "∅"))
        else:
            out.append(("∅", read[j]))
    return out


def pct(n: int, d: int) -> float:
    return round(100.0 * n / d, 2) if d else 0.0


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q / 100 * (len(s) - 1))))]


def _shift_boxes(rec: Recognizer, shift: str) -> None:
    """Every plate box ``rec`` detects, moved by ``DX,DY`` pixels (the reads follow)."""
    from engine.types import Detections

    dx, dy = (float(v) for v in shift.split(","))
    detect = rec.plates.detect

    def shifted(bgr, threshold=0.25):
        d = detect(bgr, threshold)
        return Detections(d.xyxy + np.array([dx, dy, dx, dy], np.float32), d.score, d.class_id)

    rec.plates.detect = shifted  # type: ignore[method-assign]


def eval_endtoend(rec: Recognizer, data: Path, regions_hint: bool, limit: int | None) -> dict:
    rows = [json.loads(line) for line in open(data / "endtoend.jsonl")]
    if limit:
        rows = rows[:limit]
    by_region: dict[str, dict] = defaultdict(lambda: defaultdict(int))
    times: dict[str, list[float]] = defaultdict(list)
    engine_times: dict[str, list[float]] = defaultdict(list)
    conf: dict[str, Counter] = defaultdict(Counter)
    misses: list[dict] = []
    calib: list[tuple[float, float, bool, bool]] = []  # (read score, dscore, exact, is labelled)
    for row in rows:
        region = row["region"]
        t0 = time.perf_counter()
        img = read_image_file(str(data / row["image"]))
        t1 = time.perf_counter()
        hint = region_hint(region) if regions_hint else []
        res = rec.recognize(img, regions=hint)
        t2 = time.perf_counter()
        times[region].append((t2 - t0) * 1000)
        engine_times[region].append((t2 - t1) * 1000)
        preds = [plate_result(r) for r in res.results]
        s = by_region[region]
        s["images"] += 1
        matched: set[int] = set()
        for gt in row["plates"]:
            s["plates"] += 1
            truth = norm(gt.get("suggested_text") or gt["text"], region)
            ious = [iou(gt["box"], p["box"]) for p in preds]
            best = max(range(len(preds)), key=ious.__getitem__) if preds else -1
            if best >= 0 and ious[best] >= IOU_BOX:
                s["box_hits"] += 1
            read = ""
            if best >= 0 and ious[best] >= IOU_MATCH:
                matched.add(best)
                read = norm(preds[best]["plate"], region)
                calib.append((preds[best]["score"], preds[best]["dscore"], read == truth, True))
            if read == truth:
                s["exact"] += 1
            else:
                conf[region].update(confusions(truth, read) if read else [(truth, "(no read)")])
                misses.append({"image": row["image"], "truth": truth, "read": read or None,
                               "iou": round(ious[best], 3) if best >= 0 else None})
        s["false_plates"] += len(preds) - len(matched)
        calib += [(p["score"], p["dscore"], False, False)
                  for i, p in enumerate(preds) if i not in matched]
    report = _summarise(by_region, times, engine_times, conf, misses)
    report["calibration"] = _calibration(calib)
    return report


def _calibration(calib: list[tuple[float, float, bool, bool]]) -> dict:
    """What a threshold means: per score bin, how often the read is exact (read score) and
    how often the detection is the labelled plate (dscore; unlabelled real plates count as
    false, so this is a lower bound)."""
    edges = [0.0, 0.25, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0001]
    out: dict = {"read_score": [], "dscore": []}
    for key, col, ok_col in (("read_score", 0, 2), ("dscore", 1, 3)):
        for lo, hi in zip(edges, edges[1:], strict=False):
            sel = [c for c in calib if lo <= c[col] < hi and (key == "dscore" or c[3])]
            if sel:
                out[key].append({"from": lo, "to": min(hi, 1.0), "n": len(sel),
                                 "correct_pct": pct(sum(c[ok_col] for c in sel), len(sel))})
    return out


def _summarise(by_region, times, engine_times, conf, misses) -> dict:
    report: dict = {"regions": {}, "misses": misses}
    total = Counter()
    for region in sorted(by_region):
        s = by_region[region]
        total.update(s)
        report["regions"][region] = _row(s, times[region], engine_times[region])
        report["regions"][region]["confusions"] = [
            {"truth": a, "read": b, "count": n} for (a, b), n in conf[region].most_common(15)
        ]
    all_t = [t for v in times.values() for t in v]
    all_e = [t for v in engine_times.values() for t in v]
    report["overall"] = _row(total, all_t, all_e)
    return report


def _row(s, t: list[float], e: list[float]) -> dict:
    return {
        "images": s["images"],
        "plates": s["plates"],
        "exact_pct": pct(s["exact"], s["plates"]),
        "box_recall_pct": pct(s["box_hits"], s["plates"]),
        "false_plates_per_image": round(s["false_plates"] / max(1, s["images"]), 3),
        "ms_mean": round(statistics.fmean(t), 1) if t else 0.0,
        "ms_p50": round(percentile(t, 50), 1),
        "ms_p95": round(percentile(t, 95), 1),
        "engine_ms_p50": round(percentile(e, 50), 1),
    }


def load_crops(data: Path) -> list[tuple[dict, np.ndarray]]:
    """``crops.jsonl`` rows with their decoded images (read once for both crop evals)."""
    rows = [json.loads(line) for line in open(data / "crops.jsonl")]
    return [(r, read_image_file(str(data / r["image"]))) for r in rows]


def eval_crops(rec: Recognizer, labelled: list[tuple[dict, np.ndarray]],
               limit: int | None) -> dict:
    labelled = labelled[: limit or None]
    rows = [r for r, _ in labelled]
    crops = [c for _, c in labelled]
    reads = rec.ocr.read(crops)  # the crops are the plates already
    exact = with_state = 0
    for read, row in zip(reads, rows, strict=True):
        truth = norm(row["text"], row["region"])
        exact += norm(read.text, row["region"]) == truth
        # the same read guided by the crop's US state format (when we know that state's format)
        fit = read_with_formats(read.probs, (f"us-{row['state']}",), rec.ocr.cfg.alphabet,
                                rec.ocr.cfg.pad_char)
        text = fit.text if fit and fit.beats(read.score) else read.text
        with_state += norm(text, row["region"]) == truth
    return {"crops": len(rows), "exact_pct": pct(exact, len(rows)),
            "exact_with_state_hint_pct": pct(with_state, len(rows))}


def two_line_plate(crop: np.ndarray, text: str) -> np.ndarray:
    """A two-line (square) plate made from a real one-line crop: the text band is cut after
    the first half of the characters (US crops: text spans ~6-94 % of the width) and the
    second part is put under the first, as on motorcycle and square plates."""
    import cv2

    h, w = crop.shape[:2]
    k = (len(text) + 1) // 2
    cut = int(w * (0.06 + 0.88 * k / len(text)))
    band = crop[int(0.12 * h) : int(0.88 * h)]
    first, second = band[:, :cut], band[:, cut:]
    width = max(first.shape[1], second.shape[1])
    rows = [cv2.resize(r, (width, r.shape[0]), interpolation=cv2.INTER_LINEAR)
            for r in (first, second)]
    return np.vstack(rows)


def eval_two_line(rec: Recognizer, labelled: list[tuple[dict, np.ndarray]],
                  limit: int | None) -> dict:
    """Two-line plates made from the US crops: the OCR on the whole crop (as before) and
    with the rows read apart (what the recognizer does for square boxes), and its cost."""
    labelled = [(r, c) for r, c in labelled if len(r["text"]) >= 5][: limit or None]
    rows = [r for r, _ in labelled]
    plates = [two_line_plate(c, r["text"]) for r, c in labelled]
    t0 = time.perf_counter()
    whole = [rec.ocr.read([p])[0] for p in plates]
    t1 = time.perf_counter()
    split = [rec.ocr.read_plates([p], [True])[0] for p in plates]
    t2 = time.perf_counter()
    truth = [norm(r["text"], r["region"]) for r in rows]

    def exact(reads: list) -> float:
        return pct(sum(norm(x.text, "us") == t for x, t in zip(reads, truth, strict=True)),
                   len(rows))

    return {
        "plates": len(rows),
        "whole_exact_pct": exact(whole),
        "rows_exact_pct": exact(split),
        "whole_ms": round((t1 - t0) * 1000 / max(1, len(rows)), 2),
        "rows_ms": round((t2 - t1) * 1000 / max(1, len(rows)), 2),
    }


def eval_vehicle_types(rec: Recognizer, data: Path) -> dict:
    """``vehicle.type`` on the development images whose vehicle was labelled by hand
    (scripts/data/vehicle_types_dev.jsonl: those the detector alone calls truck), without and
    with mmc (which rechecks close-up trucks)."""
    labels = [json.loads(line) for line in open(ROOT / "scripts/data/vehicle_types_dev.jsonl")]
    rows = [json.loads(line) for line in open(data / "endtoend.jsonl")]
    truth = {row["image"]: row for row in rows}
    out: dict = {"vehicles": len(labels)}
    for name, mmc in (("detector_alone", False), ("with_recheck", True)):
        right, seen = 0, Counter()
        for label in labels:
            box = truth[label["image"]]["plates"][0]["box"]
            result = rec.recognize(read_image_file(str(data / label["image"])), mmc=mmc)
            got = next((p.vehicle.type for p in result.results if p.vehicle
                        and iou(box_json(p.box), box) >= IOU_MATCH), "none")
            right += got == label["type"]
            seen[f"{label['type']}→{got}"] += 1
        out[name] = {"right": right, "confusions": dict(seen.most_common())}
    return out


def print_report(report: dict, old: dict | None) -> None:
    cols = ["images", "exact_pct", "box_recall_pct", "false_plates_per_image", "ms_mean",
            "ms_p50", "ms_p95", "engine_ms_p50"]
    head = ["region", "images", "exact %", "box recall %", "false/img", "ms mean", "ms p50",
            "ms p95", "engine p50"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    rows = [*report["endtoend"]["regions"].items(), ("overall", report["endtoend"]["overall"])]
    for name, r in rows:
        cells = []
        for c in cols:
            cell = f"{r[c]}"
            if old and c != "images":
                prev = (old["endtoend"]["regions"].get(name) if name != "overall"
                        else old["endtoend"]["overall"])
                if prev and c in prev:
                    cell += f" ({r[c] - prev[c]:+.2f})"
            cells.append(cell)
        print(f"| {name} | " + " | ".join(cells) + " |")
    crops = report["crops"]
    line = f"\nOCR alone on {crops['crops']} US crops: exact {crops['exact_pct']}%"
    if old:
        line += f" ({crops['exact_pct'] - old['crops']['exact_pct']:+.2f})"
    line += f"; with the crop's state as region hint: {crops['exact_with_state_hint_pct']}%"
    print(line)
    two = report["two_line"]
    print(f"Two-line plates made from {two['plates']} US crops: whole crop "
          f"{two['whole_exact_pct']}% ({two['whole_ms']} ms), rows read apart "
          f"{two['rows_exact_pct']}% ({two['rows_ms']} ms per plate)")
    vt = report["vehicle_types"]
    print(f"vehicle.type on {vt['vehicles']} hand-labelled vehicles (the detector alone calls "
          f"them truck): right {vt['detector_alone']['right']} -> "
          f"{vt['with_recheck']['right']} with mmc (close-up recheck); "
          + ", ".join(f"{k}×{v}" for k, v in vt["with_recheck"]["confusions"].items()))
    for key, what in (("read_score", "read exact"), ("dscore", "is the labelled plate")):
        bins = report["endtoend"]["calibration"][key]
        print(f"{key}: " + ", ".join(f"[{b['from']:.2f},{b['to']:.2f}) n={b['n']} "
                                     f"{b['correct_pct']}%" for b in bins) + f" ({what})")
    for region, r in report["endtoend"]["regions"].items():
        top = ", ".join(f"{c['truth']}→{c['read']}×{c['count']}" for c in r["confusions"][:10])
        print(f"confusions {region}: {top or 'none'}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "evaldata")
    p.add_argument("--models-dir", default=None)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    p.add_argument("--backend", choices=PREFERENCES, default=None,
                   help="inference backend (default: $PLATESTREAM_BACKEND, then auto)")
    p.add_argument("--precision", choices=PRECISIONS, default=None,
                   help="model precision (default: $PLATESTREAM_PRECISION, then auto)")
    p.add_argument("--detector-input", choices=["fit", "square"], default=None,
                   help="detector input (default: $PLATESTREAM_DETECTOR_INPUT, then fit)")
    p.add_argument("--views", type=int, default=None,
                   help="read each plate from the first N of the OCR's crops (engine "
                        "OCR_VIEWS; default all): how much the views steady the reads")
    p.add_argument("--ocr-sure", default=None, metavar="SCORE|off",
                   help="keep a plate's one-view read when it scores at least SCORE (engine "
                        "OCR_SURE_SCORE); off: every plate from all views")
    p.add_argument("--box-shift", default=None, metavar="DX,DY",
                   help="move every detected box by DX,DY pixels before it is read: how much "
                        "a one-pixel change of the box moves exact")
    p.add_argument("--out", type=Path, default=ROOT / "reports" / "eval_accuracy.json")
    p.add_argument("--compare", type=Path, help="a saved report to show the change against")
    p.add_argument("--no-region-hint", action="store_true",
                   help="do not pass the image's country as the `regions` hint")
    p.add_argument("--limit", type=int, help="first N rows only (smoke test)")
    args = p.parse_args()
    if not (args.data / "endtoend.jsonl").is_file():
        print(f"eval_accuracy: no endtoend.jsonl in {args.data} (use --data)", file=sys.stderr)
        return 2
    old = json.loads(args.compare.read_text()) if args.compare else None
    # flags > $PLATESTREAM_* > defaults, as the CLI fills them
    eng = engine_settings(argparse.Namespace(models_dir=args.models_dir, precision=args.precision,
                                             detector_input=args.detector_input,
                                             backend=args.backend))
    rec = Recognizer.from_models_dir(eng.models_dir, threads=args.threads, backend=eng.backend,
                                     precision=eng.precision, int8_cache=eng.int8_cache_dir,
                                     detector_input=eng.detector_input)
    if args.views:
        engine.recognizer.OCR_VIEWS = engine.recognizer.OCR_VIEWS[:args.views]
    if args.ocr_sure:
        engine.recognizer.OCR_SURE_SCORE = (None if args.ocr_sure == "off"
                                            else float(args.ocr_sure))
    if args.box_shift:
        _shift_boxes(rec, args.box_shift)
    rec.recognize(read_image_file(str(args.data / "images/eu/eu1.jpg")))  # warm-up
    crops = load_crops(args.data)
    report = {
        "endtoend": eval_endtoend(rec, args.data, not args.no_region_hint, args.limit),
        "crops": eval_crops(rec, crops, args.limit),
        "two_line": eval_two_line(rec, crops, args.limit),
        "vehicle_types": eval_vehicle_types(rec, args.data),
        "threads": args.threads,
        "backend": rec.backend_name,
        "precision": rec.precision,
        "ocr_views": args.views or "all", "box_shift": args.box_shift,
        "ocr_sure": engine.recognizer.OCR_SURE_SCORE,
        "detector_input": eng.detector_input,
        "region_hint": not args.no_region_hint,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print_report(report, old)
    print(f"\nreport written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
