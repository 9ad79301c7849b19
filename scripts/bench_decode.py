#!/usr/bin/env python3
"""What skipping the deblocking filter saves: CPU per decoded frame of the 1080p25 benchmark
clip, decoded in full and fast (``fast_decode``) in alternating rounds in one process, on 1
thread as a camera decodes (stream.sources.decoding.Decoder). Alternating makes the two
comparable on a host whose speed moves; the thread's CPU time leaves out other tenants.

    .venv/bin/python scripts/bench_decode.py [--frames 150] [--rounds 6] \
        [--out reports/bench_decode.json]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.bench_stream import clip_1080p  # noqa: E402
from scripts.benchlib import write_report  # noqa: E402


def cpu_ms_per_frame(clip: Path, fast: bool, frames: int) -> float:
    import av

    from stream.sources.decoding import Decoder

    with av.open(str(clip)) as c:
        dec = Decoder(c.streams.video[0], fast=fast, threads=1)
        n, t0 = 0, time.thread_time()
        for _ in dec.frames(c):
            n += 1
            if n >= frames:
                break
        return (time.thread_time() - t0) / max(1, n) * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=150, help="frames per round and mode")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "bench_decode.json")
    args = ap.parse_args()
    clip = clip_1080p()
    ms: dict[str, list[float]] = {"full": [], "fast": []}
    for r in range(args.rounds):
        for mode in ("full", "fast") if r % 2 == 0 else ("fast", "full"):
            ms[mode].append(cpu_ms_per_frame(clip, mode == "fast", args.frames))
    full, fast = statistics.median(ms["full"]), statistics.median(ms["fast"])
    print(f"CPU ms per 1080p frame, median of {args.rounds} rounds: full {full:.2f}, fast "
          f"{fast:.2f} ({fast / full:.3f}x)")
    write_report(args.out, {
        "clip": str(clip), "frames": args.frames, "threads": 1, "at": time.strftime("%H:%M"),
        "full_ms": round(full, 2), "fast_ms": round(fast, 2), "ratio": round(fast / full, 3),
        "rounds_ms": {k: [round(x, 2) for x in v] for k, v in ms.items()}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
