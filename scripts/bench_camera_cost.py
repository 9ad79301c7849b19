#!/usr/bin/env python3
"""What one camera costs, stage by stage: CPU milliseconds per second of video.

Runs the stream's per-frame steps one after another on one thread, the way one camera's
frames go through them (decoding every frame, then for each sampled frame: the conversion to
the analysis size, its grey thumbnail with the scene check and the motion gate ("motion"),
and the per-frame (light) recognition), and reports each stage's milliseconds per
camera-second and per frame. N cameras on C cores can be real time only while N x total <
C x 1000 ms with room to spare: this is how many cameras a machine can take before
scripts/bench_stream.py measures it, and which stage to work on.

    PLATESTREAM_MODELS=../shared/models .venv/bin/python scripts/bench_camera_cost.py
    .venv/bin/python scripts/bench_camera_cost.py --fps 5 --fast-decode --seconds 20

The engine runs with one thread (the stream's default with 2 workers on 2 cores), warmed up
first. Steps run interleaved with decoding, as in the stream: the detector's weights compete
with the decoder for the caches. Writes reports/camera_cost.json (or --out).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.bench_stream import clip_1080p, sample_video  # noqa: E402
from scripts.benchlib import write_report  # noqa: E402


def measure(clip: Path, fps: float, seconds: float, width: int, fast: bool,
            threads: int, backend: str | None = None) -> dict:
    import av
    import numpy as np
    from av.video.reformatter import VideoReformatter

    from engine import Recognizer
    from stream.motion import THUMB_WIDTH, MotionGate, thumbnail_height
    from stream.sources.decoding import Decoder
    from stream.sources.reader import (
        DECODER_THREADS,
        BgrScaler,
        analysis_size,
        to_grey_thumbnail,
    )
    from stream.tracking.scene import SceneChange

    rec = Recognizer.from_models_dir(os.environ.get("PLATESTREAM_MODELS"), threads=threads,
                                     backend=backend or os.environ.get("PLATESTREAM_BACKEND"))
    gate, scene, to_bgr, thumbs = MotionGate(), SceneChange(), BgrScaler(), VideoReformatter()
    spent = dict.fromkeys(("decode", "convert", "motion", "recognize"), 0.0)
    decoded = analysed = plates = 0
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        decoder = Decoder(stream, fast=fast, threads=DECODER_THREADS)  # as the stream's readers
        rate = float(stream.average_rate or 25)
        w, h = analysis_size(stream.codec_context.width, stream.codec_context.height, width)
        rec.recognize_batch([np.zeros((h, w, 3), np.uint8)], light=True)  # sessions made
        frames = decoder.frames(container)
        every = max(1, round(rate / fps))
        while decoded < seconds * rate:
            t0 = time.perf_counter()
            frame = next(frames, None)
            if frame is None:
                break
            t1 = time.perf_counter()
            spent["decode"] += t1 - t0
            decoded += 1
            if (decoded - 1) % every:
                continue
            image = to_bgr(frame, w, h)
            t2 = time.perf_counter()
            thumb = to_grey_thumbnail(thumbs, frame, THUMB_WIDTH, thumbnail_height(w, h))
            scene.changed(image, thumb)
            gate.moved(image, decoded / rate, thumb)
            t3 = time.perf_counter()
            result = rec.recognize_batch([image], light=True)[0]
            t4 = time.perf_counter()
            spent["convert"] += t2 - t1
            spent["motion"] += t3 - t2
            spent["recognize"] += t4 - t3
            analysed += 1
            plates += len(result.results)
    video_s = decoded / rate
    stages = {k: {"ms_per_camera_second": round(v * 1000 / video_s, 1),
                  "ms_per_frame": round(v * 1000 / (decoded if k == "decode" else analysed), 2)}
              for k, v in spent.items()}
    total = sum(s["ms_per_camera_second"] for s in stages.values())
    return {"video_seconds": round(video_s, 1), "frames_decoded": decoded,
            "frames_analysed": analysed, "plates_per_frame": round(plates / analysed, 2),
            "stages": stages, "total_ms_per_camera_second": round(total, 1),
            "cameras_per_core_at_full_load": round(1000 / total, 2),
            "backend": rec.backend_name, "precision": rec.precision}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fps", type=float, default=5.0, help="frames analysed a second")
    p.add_argument("--seconds", type=float, default=12.0, help="seconds of video")
    p.add_argument("--analysis-width", type=int, default=1280,
                   help="the camera's analysis_width (frames are scaled to it)")
    p.add_argument("--fast-decode", action="store_true", help="the camera's fast_decode")
    p.add_argument("--threads", type=int, default=1, help="engine threads")
    p.add_argument("--backend", default=None, help="engine backend: auto, onnxruntime, openvino "
                   "(default: $PLATESTREAM_BACKEND, then auto)")
    p.add_argument("--video", type=Path, help="source video (default: evaldata cars.mp4 "
                                              "made 1080p25)")
    p.add_argument("--out", type=Path, default=ROOT / "reports" / "camera_cost.json")
    args = p.parse_args()
    os.environ.setdefault("PLATESTREAM_MODELS", str(ROOT.parent / "shared" / "models"))
    src = args.video or sample_video()
    if not src.is_file():
        sys.exit(f"bench_camera_cost: no video at {src} (use --video)")
    clip = src if args.video else clip_1080p(src)
    report = measure(clip, args.fps, args.seconds, args.analysis_width, args.fast_decode,
                     args.threads, args.backend)
    report.update({"video": str(clip), "fps": args.fps, "fast_decode": args.fast_decode,
                   "analysis_width": args.analysis_width, "threads": args.threads,
                   "load_avg": [round(x, 2) for x in os.getloadavg()]})
    print(f"{clip.name} at fps {args.fps:g}, {report['frames_decoded']} frames decoded, "
          f"{report['frames_analysed']} analysed ({report['plates_per_frame']} plates each), "
          f"{report['precision']}:")
    for name, s in report["stages"].items():
        print(f"  {name:<10} {s['ms_per_camera_second']:7.1f} ms per camera-second "
              f"({s['ms_per_frame']:.2f} ms a frame)")
    print(f"  total      {report['total_ms_per_camera_second']:7.1f} ms per camera-second: "
          f"{report['cameras_per_core_at_full_load']} cameras per fully used core; load "
          f"average {' '.join(map(str, report['load_avg']))}")
    write_report(args.out, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
