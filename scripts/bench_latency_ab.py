#!/usr/bin/env python3
"""Per-image latency of this checkout against an older commit, measured side by side.

The host of a shared machine changes speed by up to 1.6x within minutes (seen here: the same
engine's p50 27.5 ms and 44.0 ms five minutes apart), so comparing with a saved report, or
even timing one side after the other, can mislead. This script checks REV out into a temporary
git worktree and starts one timing process per side (so imports cannot mix); both load their
engine and warm up on every image once, then they take turns on blocks of ``--block`` images
(one side runs while the other waits), so a change of host speed hits both sides alike. It
reports p50/mean per side, the change, and the per-block ratio's median.

    PLATESTREAM_MODELS=../shared/models .venv/bin/python scripts/bench_latency_ab.py 1d83525

Each image is recognised with the region hint the accuracy eval uses (us -> us, br -> br).
``--mode fast`` sends config ``{"mode": "fast"}``; ``--precision`` sets the new side's
engine precision (fp32/int8/auto; the old side runs as it always did). The report also says on
how many images both sides read the same plates. Writes reports/latency_ab.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.benchlib import latency_summary, stop_processes, write_report  # noqa: E402

# One side: loads its engine, warms up on every image (the first image of each shape can
# build a session), says "ready", then times the images named by each stdin line
# ("start end") and answers with one JSON line of timings and reads.
_TIMER = r"""
import json, os, sys, time
sys.path.insert(0, sys.argv[1])
from engine import Recognizer, read_image_file
data = sys.argv[2]
rows = [json.loads(line) for line in open(os.path.join(data, "endtoend.jsonl"))]
# the environment as the CLI reads it (engine/ itself reads none since the engine settings)
p = os.environ.get("PLATESTREAM_PRECISION")
kw = {"precision": p} if p else {}
rec = Recognizer.from_models_dir(os.environ.get("PLATESTREAM_MODELS"), threads=int(sys.argv[3]),
                                 **kw)
config = json.loads(sys.argv[4])
images = [read_image_file(os.path.join(data, r["image"])) for r in rows]
hints = [{"us": ["us"], "br": ["br"]}.get(r["region"], []) for r in rows]
for image, hint in zip(images, hints):
    rec.recognize(image, hint, config=config)
print(json.dumps({"images": len(images), "precision": getattr(rec, "precision", "fp32")}),
      flush=True)
for line in sys.stdin:
    start, end = map(int, line.split())
    ms, reads = [], []
    for image, hint in zip(images[start:end], hints[start:end]):
        t0 = time.perf_counter()
        result = rec.recognize(image, hint, config=config)
        ms.append((time.perf_counter() - t0) * 1000)
        reads.append(sorted(p.plate for p in result.results))
    print(json.dumps({"ms": ms, "reads": reads}), flush=True)
"""


class Side:
    """One engine in its own process, timing the blocks of images it is given."""

    def __init__(self, src: Path, data: Path, threads: int, config: dict, env: dict) -> None:
        self.src = src
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _TIMER, str(src), str(data), str(threads),
             json.dumps(config)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": "", **env})
        hello = self._answer()
        self.images, self.precision = hello["images"], hello["precision"]

    def _answer(self) -> dict:
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        if not line:
            err = self.proc.stderr.read().strip().splitlines()  # type: ignore[union-attr]
            sys.exit(f"bench_latency_ab: {self.src}: {err[-1] if err else 'ended'}")
        return json.loads(line)

    def time(self, start: int, end: int) -> dict:
        self.proc.stdin.write(f"{start} {end}\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]
        return self._answer()

    def close(self) -> None:
        self.proc.stdin.close()  # type: ignore[union-attr]
        stop_processes([self.proc])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("rev", help="the older commit (e.g. the foundation's)")
    p.add_argument("--rounds", type=int, default=3, help="times each side reads every image")
    p.add_argument("--block", type=int, default=8, help="images per turn of one side")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "evaldata")
    p.add_argument("--out", type=Path, default=ROOT / "reports" / "latency_ab.json")
    p.add_argument("--mode", choices=["normal", "fast"], default="normal",
                   help="engine config mode for both sides")
    p.add_argument("--precision", choices=["auto", "fp32", "int8"], default=None,
                   help="the new side's precision (default: its own default, auto)")
    args = p.parse_args()
    config = {"mode": args.mode} if args.mode != "normal" else {}
    new_env = {"PLATESTREAM_PRECISION": args.precision} if args.precision else {}
    os.environ.setdefault("PLATESTREAM_MODELS", str(ROOT.parent / "shared" / "models"))
    ms: dict[str, list[float]] = {"old": [], "new": []}
    reads: dict[str, list] = {"old": [], "new": []}
    ratios: list[float] = []
    with tempfile.TemporaryDirectory(prefix="latency_ab_") as tmp:
        old = Path(tmp) / "old"
        r = subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old),
                            args.rev], capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"bench_latency_ab: cannot check out {args.rev}: {r.stderr.strip()}")
        sides: dict[str, Side] = {}
        try:
            sides["old"] = Side(old, args.data, args.threads, config, {})
            sides["new"] = Side(ROOT, args.data, args.threads, config, new_env)
            n = sides["new"].images
            for i in range(args.rounds):
                for start in range(0, n, args.block):
                    end = min(n, start + args.block)
                    # which side goes first alternates, so neither always follows the other
                    order = ("old", "new") if (start // args.block + i) % 2 == 0 else ("new", "old")
                    block = {}
                    for name in order:
                        got = sides[name].time(start, end)
                        ms[name] += got["ms"]
                        block[name] = statistics.median(got["ms"])
                        if i == 0:
                            reads[name] += got["reads"]
                    ratios.append(block["new"] / block["old"])
                print(f"round {i + 1}/{args.rounds} done", file=sys.stderr)
        finally:
            for side in sides.values():
                side.close()
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)],
                           capture_output=True)
    rev = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                         capture_output=True, text=True).stdout.strip()
    report = {"old": {"rev": args.rev, **latency_summary(ms["old"])},
              "new": {"rev": rev, **latency_summary(ms["new"])}, "rounds": args.rounds,
              "block": args.block, "threads": args.threads, "mode": args.mode,
              "precision": {k: s.precision for k, s in sides.items()},
              "same_reads": sum(a == b for a, b in zip(reads["old"], reads["new"], strict=True)),
              "images": len(reads["new"]), "load_avg": list(os.getloadavg())}
    report["p50_ratio"] = round(report["new"]["p50_ms"] / report["old"]["p50_ms"], 3)
    report["block_ratio_median"] = round(statistics.median(ratios), 3)
    for side in ("old", "new"):
        s = report[side]
        print(f"{side} {s['rev']}: p50 {s['p50_ms']} ms, mean {s['mean_ms']} ms, "
              f"p95 {s['p95_ms']} ms ({s['images']} timings)")
    print(f"p50 new/old {report['p50_ratio']:.3f}, median of the per-block ratios "
          f"{report['block_ratio_median']:.3f}; same reads on {report['same_reads']}/"
          f"{report['images']} images; load average "
          f"{' '.join(f'{x:.1f}' for x in report['load_avg'])}")
    write_report(args.out, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
