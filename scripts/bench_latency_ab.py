#!/usr/bin/env python3
"""Per-image latency of this checkout against an older commit, measured side by side.

Timings on a shared machine drift by 10-15 % between runs minutes apart, so comparing with a
saved report can mislead. This script checks REV out into a temporary git worktree and times
both engines on the same evaluation images in alternating rounds (each round a fresh
subprocess per side, so imports cannot mix), then reports p50/mean per side and the change.

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
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.benchlib import latency_summary, write_report  # noqa: E402

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
rec.recognize(images[0], config=config)
out, reads = [], []
for image, row in zip(images, rows):
    hint = {"us": ["us"], "br": ["br"]}.get(row["region"], [])
    t0 = time.perf_counter()
    result = rec.recognize(image, hint, config=config)
    out.append((time.perf_counter() - t0) * 1000)
    reads.append(sorted(p.plate for p in result.results))
print(json.dumps({"ms": out, "reads": reads, "precision": getattr(rec, "precision", "fp32")}))
"""


def time_side(src: Path, data: Path, threads: int, config: dict, env: dict) -> dict:
    p = subprocess.run([sys.executable, "-c", _TIMER, str(src), str(data), str(threads),
                        json.dumps(config)],
                       capture_output=True, text=True, env={**os.environ, "PYTHONPATH": "", **env})
    if p.returncode != 0:
        sys.exit(f"bench_latency_ab: {src}: {p.stderr.strip().splitlines()[-1]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("rev", help="the older commit (e.g. the foundation's)")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds per side")
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
    with tempfile.TemporaryDirectory(prefix="latency_ab_") as tmp:
        old = Path(tmp) / "old"
        r = subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old),
                            args.rev], capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"bench_latency_ab: cannot check out {args.rev}: {r.stderr.strip()}")
        try:
            sides: dict[str, list[float]] = {"old": [], "new": []}
            reads: dict[str, list] = {}
            precisions: dict[str, set[str]] = {}
            for i in range(args.rounds):
                for name, src, env in (("old", old, {}), ("new", ROOT, new_env)):
                    got = time_side(src, args.data, args.threads, config, env)
                    sides[name] += got["ms"]
                    reads[name] = got["reads"]
                    precisions.setdefault(name, set()).add(got["precision"])
                print(f"round {i + 1}/{args.rounds} done", file=sys.stderr)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)],
                           capture_output=True)
    rev = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                         capture_output=True, text=True).stdout.strip()
    report = {"old": {"rev": args.rev, **latency_summary(sides["old"])},
              "new": {"rev": rev, **latency_summary(sides["new"])}, "rounds": args.rounds,
              "threads": args.threads, "mode": args.mode,
              "precision": {k: sorted(v) for k, v in precisions.items()},
              "same_reads": sum(a == b for a, b in zip(reads["old"], reads["new"], strict=True)),
              "images": len(reads["new"]), "load_avg": list(os.getloadavg())}
    report["p50_change_pct"] = round(
        100 * (report["new"]["p50_ms"] / report["old"]["p50_ms"] - 1), 1)
    for side in ("old", "new"):
        s = report[side]
        print(f"{side} {s['rev']}: p50 {s['p50_ms']} ms, mean {s['mean_ms']} ms, "
              f"p95 {s['p95_ms']} ms ({s['images']} timings)")
    print(f"p50 change: {report['p50_change_pct']:+.1f} %, same reads on "
          f"{report['same_reads']}/{report['images']} images, load average "
          f"{' '.join(f'{x:.1f}' for x in report['load_avg'])}")
    write_report(args.out, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
