#!/usr/bin/env python3
"""Contact sheets for hand-labelling vehicle colours on the development set.

For every scene image of ``endtoend.jsonl`` the vehicle detector (as the recognizer runs it
with mmc=true) finds the vehicles; the one carrying the labelled plate is kept. Crops are
laid out in numbered grids (PNG) with an index JSON mapping each number to the image and the
vehicle box, so labels can be written as ``number colour`` lines and turned into
``scripts/data/vehicle_colors_dev.jsonl`` with ``--labels``.

The sheets contain evaluation-data pixels: write them outside the repository (default
``/tmp/color_sheets``), never commit them.

Usage:
    PLATESTREAM_MODELS=../shared/models python scripts/color_contact_sheets.py \
        [--data ../shared/evaldata] [--out /tmp/color_sheets]
    python scripts/color_contact_sheets.py --out /tmp/color_sheets --labels labels.txt
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from engine import models, read_image_file  # noqa: E402
from engine.backends import open_backend  # noqa: E402
from engine.geometry import coverage  # noqa: E402
from engine.vehicles import VehicleDetector  # noqa: E402

COLS, ROWS, CELL_W, CELL_H = 6, 4, 260, 200
COVER = 0.8  # the vehicle box must cover this much of the labelled plate (recognizer rule)


def plate_vehicle(dets, plate: dict) -> np.ndarray | None:
    v = dets.xyxy
    if not len(v):
        return None
    box = (plate["xmin"], plate["ymin"], plate["xmax"], plate["ymax"])
    inside = np.flatnonzero(coverage(box, v) >= COVER)
    if not len(inside):
        return None
    return v[inside[np.argmax(dets.score[inside])]]


def thumb(img: np.ndarray, box: list[int]) -> np.ndarray:
    x1, y1, x2, y2 = box
    crop = img[y1:y2, x1:x2]
    s = min((CELL_W - 4) / crop.shape[1], (CELL_H - 24) / crop.shape[0])
    crop = cv2.resize(crop, (max(1, int(crop.shape[1] * s)), max(1, int(crop.shape[0] * s))))
    cell = np.full((CELL_H, CELL_W, 3), 255, np.uint8)
    cell[22 : 22 + crop.shape[0], 2 : 2 + crop.shape[1]] = crop
    return cell


def make_sheets(data: Path, out: Path) -> None:
    d = models.resolve_models_dir(os.environ.get("PLATESTREAM_MODELS"))
    det = VehicleDetector(open_backend(models.model_path(models.VEHICLE_DETECTOR, d), 2))
    out.mkdir(parents=True, exist_ok=True)
    index, cells = [], []
    for line in open(data / "endtoend.jsonl"):
        row = json.loads(line)
        img = read_image_file(data / row["image"])
        dets = det.detect(img, 0.3, recheck_closeups=True)
        box = plate_vehicle(dets, row["plates"][0]["box"])
        if box is None:
            continue
        b = [int(round(float(c))) for c in box]
        if b[2] - b[0] < 8 or b[3] - b[1] < 8:
            continue
        n = len(index)
        index.append({"n": n, "image": row["image"],
                      "box": {"xmin": b[0], "ymin": b[1], "xmax": b[2], "ymax": b[3]}})
        cell = thumb(img, b)
        cv2.putText(cell, str(n), (4, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 255), 2)
        cells.append(cell)
    per = COLS * ROWS
    for s in range(0, len(cells), per):
        chunk = cells[s : s + per]
        chunk += [np.full_like(cells[0], 255)] * (per - len(chunk))
        rows = [np.hstack(chunk[r * COLS : (r + 1) * COLS]) for r in range(ROWS)]
        cv2.imwrite(str(out / f"sheet_{s // per:02d}.png"), np.vstack(rows))
    (out / "index.json").write_text(json.dumps(index))
    print(f"{len(index)} vehicles on {(len(cells) + per - 1) // per} sheets in {out}")


def write_labels(out: Path, labels: Path, dest: Path) -> None:
    index = {e["n"]: e for e in json.loads((out / "index.json").read_text())}
    rows, skipped = [], 0
    for line in open(labels):
        parts = line.split()
        if len(parts) != 2:
            continue
        n, colour = int(parts[0]), parts[1].lower()
        if colour in ("?", "skip"):
            skipped += 1
            continue
        rows.append({"image": index[n]["image"], "box": index[n]["box"], "color": colour})
    rows.sort(key=lambda r: r["image"])
    dest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    print(f"{len(rows)} labels written to {dest}, {skipped} skipped as unclear")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared/evaldata")
    ap.add_argument("--out", type=Path, default=Path("/tmp/color_sheets"))
    ap.add_argument("--labels", type=Path, help="'number colour' lines to turn into JSONL")
    ap.add_argument("--dest", type=Path, default=ROOT / "scripts/data/vehicle_colors_dev.jsonl")
    args = ap.parse_args()
    if args.labels:
        write_labels(args.out, args.labels, args.dest)
    else:
        make_sheets(args.data, args.out)


if __name__ == "__main__":
    main()
