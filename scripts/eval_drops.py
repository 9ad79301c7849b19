#!/usr/bin/env python3
"""Events of a labelled clip when a share of its sampled frames never reach the analysis.

What a camera on an overloaded box lives with: the clip goes through a real reader (decoding,
sampling at ``--fps``, scene check), then a share ``--drop`` of the sampled frames is left out
at random (each run its own seed; the first 3 frames always pass), then a real analyzer and
engine. Each run's events are compared with the clip's labelled plates (evaldata/videos.jsonl):
the run is right when it gives exactly one event per labelled plate, with the label's text.
Prints a line per run that is not, a summary, and writes JSON.

    .venv/bin/python scripts/eval_drops.py --drop 0.3 --runs 30       # the 1080p bench clip
    .venv/bin/python scripts/eval_drops.py --video ../shared/evaldata/videos/cars.mp4
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.benchlib import write_report  # noqa: E402


def run_once(cam, worker, drop: float, seed: int) -> tuple[list, int]:
    """(the events, the scene cuts) of one pass with ``drop`` of the frames left out."""
    from stream.analysis import CameraAnalyzer
    from stream.sources.frames import FrameSlot, SourceEnded
    from stream.sources.reader import CameraReader

    rnd = random.Random(seed)
    decoded, analysed, events = FrameSlot(block=True), FrameSlot(block=True), []
    reader = CameraReader(cam, decoded)
    analyzer = CameraAnalyzer(cam, analysed, worker, events.append)
    stop = threading.Event()

    def relay() -> None:
        n = 0
        while not stop.is_set():
            item = decoded.get(1.0)
            if item is None:
                continue
            if isinstance(item, SourceEnded):
                analysed.end(item)
                return
            n += 1
            if n > 3 and rnd.random() < drop:
                continue
            analysed.put(item, stop)

    thread = threading.Thread(target=relay, name="drops")
    thread.start()
    analyzer.start()
    reader.start()
    try:
        analyzer.finished.wait(300)
    finally:
        stop.set()
        reader.stop()
        analyzer.stop()
        thread.join(10)
    return events, analyzer.stats.scene_changes


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--video", type=Path, help="a labelled clip, or a re-timed copy of one "
                   "(default: the 1080p25 copy of cars.mp4 that bench_stream.py makes)")
    p.add_argument("--drop", type=float, default=0.3, help="share of sampled frames left out")
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--fps", type=float, default=5.0, help="the camera's fps")
    p.add_argument("--detect-interval", type=int, default=0)
    p.add_argument("--out", type=Path, default=ROOT / "reports" / "eval_drops.json")
    args = p.parse_args()
    if not 0 <= args.drop < 1:
        p.error(f"--drop must be in [0, 1), got {args.drop}")
    os.environ.setdefault("PLATESTREAM_MODELS", str(ROOT.parent / "shared" / "models"))
    sys.path.insert(0, str(ROOT / "scripts"))
    from bench_stream import clip_1080p, sample_video
    from stream_score import label_of

    from stream.cli import build_recognizer, default_threads, engine_settings
    from stream.config import CameraConfig
    from stream.engine_worker import EngineWorker

    video = args.video or clip_1080p()
    name = video.name.replace("_1080p25", "")  # bench_stream's copy keeps every frame
    label = label_of(name, sample_video().parent.parent / "videos.jsonl")
    if label is None:
        p.error(f"{video}: no labels for {name} in evaldata/videos.jsonl")
    expected = [p["text"].lower() for p in label["plates"]]
    rec = build_recognizer(engine_settings(argparse.Namespace(threads=default_threads(2),
                                                              precision=None)))
    worker = EngineWorker(rec, workers=2)
    worker.start()
    outcomes, wrong_runs, cuts = collections.Counter(), [], []
    try:
        for seed in range(args.runs):
            cam = CameraConfig(name=f"run{seed}", url=str(video), realtime=False, fps=args.fps,
                               memory_decay=5.0, detect_interval=args.detect_interval)
            events, n_cuts = run_once(cam, worker, args.drop, seed)
            texts = [e.plate for e in events]
            outcomes[" ".join(texts)] += 1
            cuts.append(n_cuts)
            if texts != expected:
                wrong_runs.append({"seed": seed, "events": [
                    {"plate": e.plate, "position_sec": e.position_sec} for e in events]})
                print(f"run {seed}: {[(e.plate, e.position_sec) for e in events]}", flush=True)
    finally:
        worker.stop()
    right = args.runs - len(wrong_runs)
    print(f"{right} of {args.runs} runs right ({args.drop:.0%} of the frames dropped, "
          f"fps {args.fps:g}); expected {expected}")
    write_report(args.out, {
        "video": str(video), "labels": name, "drop": args.drop, "fps": args.fps,
        "detect_interval": args.detect_interval, "runs": args.runs, "right": right,
        "expected": expected, "outcomes": dict(outcomes), "wrong_runs": wrong_runs,
        "scene_cuts_per_run": cuts,
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
