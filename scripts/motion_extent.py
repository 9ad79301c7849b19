#!/usr/bin/env python3
"""How much of each analysed frame moved: the motion gate's box around the pixels that changed
since the last analysed frame (``MotionGate.box``, what ``motion_crop`` starts from, before its
margins), as a share of the frame: what detecting plates on the moving part alone could save of
the plate detector's work. Frames the gate passes with no box (the first, and one every
``max_skip_s`` even when still) count as analysed, not in the shares. Prints a table and writes
JSON.

    .venv/bin/python scripts/motion_extent.py [--fps 5] [VIDEO ...]  # default: the bench clip
                                                                     # and both labelled videos
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.benchlib import write_report  # noqa: E402


def extent(video: Path, fps: float) -> dict:
    import av

    from stream.motion import MotionGate, grey_thumbnail

    gate, shares, analysed, sampled = MotionGate(), [], 0, 0
    with av.open(str(video)) as c:
        stream = c.streams.video[0]
        rate = float(stream.average_rate or 25)
        every = max(1, round(rate / fps))
        for i, frame in enumerate(c.decode(stream)):
            if i % every:
                continue
            sampled += 1
            thumb = grey_thumbnail(frame.to_ndarray(format="bgr24", width=1280, height=720))
            if not gate.moved(thumb, i / rate, thumb):
                continue
            analysed += 1
            if gate.box is not None:
                x1, y1, x2, y2 = gate.box
                shares.append((x2 - x1) * (y2 - y1))
    s = np.array(shares or [0.0])
    return {"video": video.name, "frames_sampled": sampled, "frames_analysed": analysed,
            "motion_box_share": {"mean": round(float(s.mean()), 3),
                                 "median": round(float(np.median(s)), 3),
                                 "p90": round(float(np.percentile(s, 90)), 3)}}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("videos", nargs="*", type=Path)
    p.add_argument("--fps", type=float, default=5.0, help="frames sampled a second")
    p.add_argument("--out", type=Path, default=ROOT / "reports" / "motion_extent.json")
    args = p.parse_args()
    if not args.videos:
        from scripts.bench_stream import clip_1080p

        data = ROOT.parent / "shared" / "evaldata" / "videos"
        args.videos = [clip_1080p(), data / "cars.mp4", data / "license_plate.mp4"]
    rows = [extent(v, args.fps) for v in args.videos]
    print("| video | frames sampled | analysed (moved) | motion box share of the frame: mean "
          "| median | p90 |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        m = r["motion_box_share"]
        print(f"| {r['video']} | {r['frames_sampled']} | {r['frames_analysed']} | {m['mean']} "
              f"| {m['median']} | {m['p90']} |")
    write_report(args.out, {"script": "scripts/motion_extent.py", "fps": args.fps,
                            "at": time.strftime("%Y-%m-%d %H:%M:%S"), "videos": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
