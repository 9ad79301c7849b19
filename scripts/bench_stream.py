#!/usr/bin/env python3
"""Stream benchmark: N cameras reading copies of a 1080p25 video at real-time pace.

For each N (default 1, 2, 4, 8) the pipeline runs in a fresh subprocess (so peak RSS is per N)
for --duration seconds after a warm-up, and reports: real-time factor (decoded fps / 25, the
slowest camera), analysed fps (all cameras), frames dropped (analysis behind: latest frame
wins), frames skipped by the motion gate, frames not searched between whole-frame detections
(``--detect-interval``: by design, not dropped), CPU % (of one core; 200 % = both of 2 cores)
and peak RSS. N is "real time" when every camera decodes at >= 95 % of 25 fps and at most 5 % of
the sampled frames are dropped. Prints a table and writes a JSON report.

    .venv/bin/python scripts/bench_stream.py                       # N = 1, 2, 4, 8; 30 s each
    .venv/bin/python scripts/bench_stream.py --cameras 1,2 --duration 10 --sample 2
    .venv/bin/python scripts/bench_stream.py --fps 5 --cameras 1,2,4,8,12 --repeat 2 \
        --plot docs/perf/bench_stream_fps5.png  # per-camera memory and CPU as N grows
    .venv/bin/python scripts/bench_stream.py --fps 5 --cameras 8 --detect-interval 1 \
        --motion-crop on --probe   # the "8 cameras on 2 cores" settings of the README
    .venv/bin/python scripts/bench_stream.py --fps 5 --cameras 8 --src /tmp/old-checkout
        # the same measurement with another checkout's code (side by side)

Each run also records the load average (the machine may be shared: compare runs made side by
side; ``--probe`` times the host before and after each run with scripts/probe_host.py), the
RSS and CPU per camera (peak RSS minus the RSS with the models loaded and no camera running,
divided by N) and the engine's mean batch (frames per recognize_batch call).

The 1080p25 clip is made once from the sample video (evaldata/videos/cars.mp4) with PyAV
(libx264) and cached under reports/bench_media/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# --src DIR: measure another checkout's code (the --one subprocess imports from there)
_SRC = sys.argv[sys.argv.index("--src") + 1] if "--src" in sys.argv[:-1] else str(ROOT)
sys.path.insert(0, _SRC)
FPS = 25
FAST_DECODE = {"true": True, "false": False, "auto": "auto"}
REPASS_MEMORY_S = 5.0


def sample_video() -> Path:
    """The labelled sample video the benchmarks read (evaldata/videos/cars.mp4)."""
    data = Path(os.environ.get("PLATESTREAM_DATA", ROOT.parent / "shared" / "evaldata"))
    return data / "videos" / "cars.mp4"


def clip_1080p(src: Path | None = None) -> Path:
    """The 1080p25 copy of ``src`` (default the sample video), made once under
    reports/bench_media/."""
    src = src or sample_video()
    return make_1080p(src, ROOT / "reports" / "bench_media" / f"{src.stem}_1080p25.mp4")


def make_1080p(src: Path, dst: Path) -> Path:
    """Re-encode ``src`` as 1920x1080 at a constant 25 fps (every decoded frame, re-timed)."""
    if dst.exists():
        return dst
    import av

    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_suffix(".part.mp4")
    with av.open(str(src)) as inp, av.open(str(tmp), "w") as out:
        vs = out.add_stream("libx264", rate=FPS)
        vs.width, vs.height, vs.pix_fmt = 1920, 1080, "yuv420p"
        vs.options = {"preset": "veryfast", "crf": "23"}
        for i, frame in enumerate(inp.decode(video=0)):
            f = frame.reformat(width=1920, height=1080, format="yuv420p")
            f.pts, f.time_base = i, Fraction(1, FPS)
            for packet in vs.encode(f):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
    tmp.rename(dst)
    return dst


def _totals(status: dict) -> dict:
    cams = status["cameras"].values()
    keys = ("frames_decoded", "frames_sampled", "frames_analysed", "frames_dropped",
            "frames_skipped_still", "events")
    out = {k: sum(c[k] for c in cams) for k in keys}
    out["frames_shed"] = sum(c.get("frames_shed", 0) for c in cams)  # none before 2026-11-27
    out["frames_motion_cropped"] = sum(c.get("frames_motion_cropped", 0) for c in cams)
    out["frames_around_plates"] = sum(c.get("frames_around_plates", 0) for c in cams)
    out["frames_between"] = sum(c.get("frames_between", 0) for c in cams)
    # cameras decoding without the deblocking filter at the end, and switches (stop 21 on)
    out["fast_decode_cameras"] = sum(c.get("fast_decode") is True for c in cams)
    out["fast_decode_switches"] = sum(c.get("fast_decode_switches", 0) for c in cams)
    out["min_decoded"] = min(c["frames_decoded"] for c in cams)
    # detect_interval in force per camera (auto: raised while dropping; none before stop 25)
    out["detect_intervals"] = sorted(c.get("detect_interval", 0) for c in cams)
    out["detect_interval_changes"] = sum(c.get("detect_interval_changes", 0) for c in cams)
    return out


def run_one(n: int, video: Path, args: argparse.Namespace) -> dict:
    """One measurement in this process: N cameras for warmup + duration seconds."""
    os.environ.setdefault("PLATESTREAM_MODELS", str(ROOT.parent / "shared" / "models"))
    import yaml

    from stream.cli import build_recognizer, default_threads
    from stream.config import load_config
    from stream.engine_worker import EngineWorker
    from stream.pipeline import Pipeline

    if args.decoder_nice is not None:
        import stream.sources.reader as reader

        reader.DECODER_NICE = args.decoder_nice
    with tempfile.TemporaryDirectory(prefix="bench_stream_") as tmp:
        cams = {}
        for i in range(n):
            copy = Path(tmp) / f"cam{i}.mp4"
            os.link(video, copy) if video.stat().st_dev == Path(tmp).stat().st_dev else (
                copy.write_bytes(video.read_bytes()))
            cams[f"cam{i}"] = {"url": str(copy), "loop": True, "realtime": True,
                               "motion": not args.no_motion,
                               **({"motion_crop": args.motion_crop == "on"}
                                  if args.motion_crop else {}),
                               **({"detect_interval": args.detect_interval}
                                  if args.detect_interval is not None else {}),
                               **({"fast_decode": FAST_DECODE[args.fast_decode]}
                                  if args.fast_decode else {}),
                               **({"fps": args.fps} if args.fps else {"sample": args.sample}),
                               **({"max_inflight": args.max_inflight}
                                  if args.max_inflight else {})}
        cfg_path = Path(tmp) / "bench.yaml"
        label = _label(args)
        scoring = label is not None
        if scoring:
            for c in cams.values():
                c["outputs"] = ["events"]
                # a plate is seen again in the next pass (>= 6 s later in cars.mp4): not a
                # repeat to suppress (300 s by default), as a new car with that plate would be
                c["memory_decay"] = REPASS_MEMORY_S
        outputs = {"events": {"type": "jsonl", "file": "{camera_id}.jsonl"}} if scoring else {}
        cfg_path.write_text(yaml.safe_dump({"output_dir": tmp, "cameras": cams,
                                            **({"outputs": outputs} if outputs else {})}))
        cfg = load_config(cfg_path)
        threads = args.threads or default_threads(args.workers)
        try:
            from stream.cli import engine_settings
        except ImportError:  # --src of a checkout before the one engine schema (038d973)
            rec = build_recognizer(argparse.Namespace(models_dir=None, threads=threads,
                                                      backend=None, engines_dir=None))
        else:  # flags and $PLATESTREAM_* as the CLI reads them
            rec = build_recognizer(engine_settings(argparse.Namespace(
                threads=threads, precision=args.precision,
                **({"backend": args.backend} if args.backend else {}))))
        worker = EngineWorker(rec, workers=args.workers, max_batch=args.max_batch)
        worker.start()
        rec.recognize(__import__("numpy").zeros((720, 1280, 3), "uint8"))  # warm the sessions
        base_rss = _rss_mb()
        pipeline = Pipeline(cfg, worker)
        started = time.time()
        pipeline.start()
        try:
            time.sleep(args.warmup)
            load0 = os.getloadavg()[0]
            s0, r0, t0 = _totals(pipeline.status()), resource.getrusage(resource.RUSAGE_SELF), \
                time.monotonic()
            w0 = worker.stats()
            time.sleep(args.duration)
            s1, r1, t1 = _totals(pipeline.status()), resource.getrusage(resource.RUSAGE_SELF), \
                time.monotonic()
            w1 = worker.stats()
            load1 = os.getloadavg()[0]
            ended = time.time()
        finally:
            pipeline.stop(drain_timeout=10.0)
            worker.stop()
        accuracy = None
        if scoring:
            from stream_score import score_cameras

            accuracy = score_cameras(Path(cfg.output_dir), list(cams), label, FPS, started,
                                     ended)
    wall = t1 - t0
    d = {k: s1[k] - s0[k] for k in s1 if isinstance(s1[k], int)}
    cpu = (r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime) / wall * 100
    rt = d["min_decoded"] / wall / FPS
    drop_ratio = d["frames_dropped"] / max(1, d["frames_sampled"])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    batches = w1["batches"] - w0["batches"]
    return {
        "cameras": n,
        "seconds": round(wall, 1),
        "realtime_factor": round(rt, 3),
        "decoded_fps": round(d["frames_decoded"] / wall, 1),
        "analysed_fps": round(d["frames_analysed"] / wall, 1),
        "frames_sampled": d["frames_sampled"],
        "frames_analysed": d["frames_analysed"],
        "frames_skipped_still": d["frames_skipped_still"],
        "frames_dropped": d["frames_dropped"],
        "frames_shed": d["frames_shed"],
        # at the end of the run, and over the whole run (warm-up included)
        "fast_decode_cameras": s1["fast_decode_cameras"],
        "fast_decode_switches": s1["fast_decode_switches"],
        "drop_ratio": round(drop_ratio, 3),
        # the warm-up on its own (auto settings start from their first guess)
        "warmup_frames_sampled": s0["frames_sampled"],
        "warmup_frames_dropped": s0["frames_dropped"],
        # at the end of the warm-up and of the run, and changes over the whole run
        "detect_intervals": [s0["detect_intervals"], s1["detect_intervals"]],
        "detect_interval_changes": s1["detect_interval_changes"],
        "events": d["events"],
        "frames_motion_cropped": d.get("frames_motion_cropped", 0),
        "frames_around_plates": d.get("frames_around_plates", 0),
        "frames_between": d.get("frames_between", 0),
        "cpu_percent": round(cpu, 1),
        "peak_rss_mb": round(peak, 1),
        "base_rss_mb": round(base_rss, 1),
        "rss_per_camera_mb": round((peak - base_rss) / n, 1),
        "cpu_per_camera_percent": round(cpu / n, 1),
        "mean_batch": round((w1["processed"] - w0["processed"]) / max(1, batches), 2),
        "load_avg_1min": [round(load0, 2), round(load1, 2)],
        "backend": getattr(rec, "backend_name", "onnxruntime"),
        "precision": getattr(rec, "precision", "fp32"),
        "detector_input": "fit" if getattr(rec.plates, "fitted", None) else "square",
        "real_time": rt >= 0.95 and drop_ratio <= 0.05,
        # the cameras' events against the clip's labels, warm-up included (stream_score.py)
        **({"accuracy": accuracy} if accuracy is not None else {}),
    }


def _accuracy_cell(a: dict | None) -> str:
    if not a:
        return "-"
    return (f"{a['exact']} / {a['wrong']} / {a['missed']} of {a['expected']}, "
            f"{a['other']}")


def _label(args: argparse.Namespace) -> dict | None:
    """The labels of the source video (evaldata/videos.jsonl), None for an unlabelled one."""
    from stream_score import label_of

    src = args.video or sample_video()
    return label_of(src.name, src.parent.parent / "videos.jsonl")


def detect_interval_arg(v: str) -> int | str:
    """``--detect-interval``: 0-4 or auto, as the camera key takes it."""
    if v == "auto":
        return v
    if not v.isdigit() or int(v) > 4:
        raise argparse.ArgumentTypeError(f"expected 0-4 or auto, got {v!r}")
    return int(v)


def _rss_mb() -> float:
    """Resident memory now (VmRSS), MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cameras", default="1,2,4,8", help="comma-separated N values")
    p.add_argument("--duration", type=float, default=30.0, help="measured seconds per N")
    p.add_argument("--warmup", type=float, default=5.0, help="seconds before measuring")
    p.add_argument("--sample", type=int, default=2, help="analyse every Nth frame (Stream's "
                   "default is 2)")
    p.add_argument("--fps", type=float, default=None, help="analyse at most FPS frames a "
                   "second per camera (the camera's fps: key; overrides --sample)")
    p.add_argument("--repeat", type=int, default=1, help="runs per N (shared machines: 2)")
    p.add_argument("--backend", default=None, help="engine backend: auto, onnxruntime, "
                   "openvino (default: $PLATESTREAM_BACKEND, then auto)")
    p.add_argument("--precision", choices=["auto", "fp32", "int8", "bf16"], default=None,
                   help="engine precision (default: the engine's own, auto)")
    p.add_argument("--src", type=Path, help="measure the code of this checkout instead")
    p.add_argument("--plot", type=Path, help="write a PNG of RSS and CPU per camera vs N "
                   "(needs matplotlib)")
    p.add_argument("--no-motion", action="store_true", help="disable the motion gate")
    p.add_argument("--motion-crop", choices=["on", "off"], default=None,
                   help="cameras' motion_crop (detect only where the frame moved, at the "
                        "frame's scale; default: the config's, off)")
    p.add_argument("--detect-interval", type=detect_interval_arg, default=None,
                   help="cameras' detect_interval (frames searched only around the last "
                        "plates between whole ones: 0-4 or auto; default: the config's, 0)")
    p.add_argument("--fast-decode", choices=FAST_DECODE, default=None,
                   help="cameras' fast_decode: true (no H.264 deblocking filter), false, auto "
                        "(only while overloaded; default: the config's, auto since stop 21)")
    p.add_argument("--max-inflight", type=int, default=None,
                   help="frames of a camera in the engine at once (default: the config's)")
    p.add_argument("--threads", type=int, default=None,
                   help="ONNX Runtime threads per run (default: cores / workers, as `run`)")
    p.add_argument("--decoder-nice", type=int, default=None,
                   help="the decoding threads' nice value (default: the reader's DECODER_NICE)")
    p.add_argument("--workers", type=int, default=2, help="engine worker threads")
    p.add_argument("--max-batch", type=int, default=8,
                   help="frames per engine call (engine.max_batch; default 8, as `run`)")
    p.add_argument("--video", type=Path, help="source video (default: evaldata cars.mp4)")
    p.add_argument("--probe", action="store_true",
                   help="time the host before and after each run (scripts/probe_host.py)")
    p.add_argument("--out", type=Path, default=ROOT / "reports" / "bench_stream.json")
    p.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: one N, JSON out
    p.add_argument("--clip", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.clip, args)))
        return 0
    clip = clip_1080p(args.video)
    if args.probe:
        sys.path.insert(0, str(ROOT / "scripts"))
        from probe_host import probe
    rows = []
    for n in (int(x) for x in args.cameras.split(",")):
        for _ in range(args.repeat):
            cmd = [sys.executable, __file__, "--one", str(n), "--clip", str(clip),
                   "--duration", str(args.duration), "--warmup", str(args.warmup),
                   "--sample", str(args.sample), "--workers", str(args.workers)]
            for flag in ("threads", "fps", "backend", "precision", "src", "max_inflight",
                         "max_batch", "decoder_nice", "video"):
                if getattr(args, flag) is not None:
                    cmd += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
            if args.no_motion:
                cmd.append("--no-motion")
            if args.motion_crop:
                cmd += ["--motion-crop", args.motion_crop]
            if args.detect_interval is not None:
                cmd += ["--detect-interval", str(args.detect_interval)]
            if args.fast_decode:
                cmd += ["--fast-decode", args.fast_decode]
            before = probe()["ms_per_core"] if args.probe else None
            out = subprocess.run(cmd, capture_output=True, text=True,
                                 env={**os.environ, "PYTHONPATH": ""})
            if out.returncode != 0:
                print(out.stderr[-3000:], file=sys.stderr)
                return 1
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            r = rows[-1]
            if args.probe:  # the host's speed: ms per detector call per core, before/after
                r["probe_ms"] = [before, probe()["ms_per_core"]]
            print(f"N={n}: rt {r['realtime_factor']:.2f}  analysed {r['analysed_fps']:.1f} fps  "
                  f"dropped {r['frames_dropped']}  cpu {r['cpu_percent']:.0f}%  "
                  f"rss {r['peak_rss_mb']:.0f} MB  load {r['load_avg_1min']}",
                  file=sys.stderr, flush=True)
    best = max((r["cameras"] for r in rows if r["real_time"]), default=0)
    header = ("N", "rt factor", "decoded fps", "analysed fps", "skipped still",
              "between (interval)", "dropped",
              "drop %", "CPU %", "CPU %/cam", "peak RSS MB", "RSS MB/cam", "mean batch",
              "load 1m", "fast-decoding cams", "intervals at end",
              "plate passes: exact / wrong / missed of expected, other", "probe ms before/after",
              "real time")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        print("| " + " | ".join(str(v) for v in (
            r["cameras"], r["realtime_factor"], r["decoded_fps"], r["analysed_fps"],
            r["frames_skipped_still"], r.get("frames_between", 0), r["frames_dropped"],
            round(100 * r["drop_ratio"], 1),
            r["cpu_percent"], r.get("cpu_per_camera_percent"), r["peak_rss_mb"],
            r.get("rss_per_camera_mb"), r.get("mean_batch"),
            "/".join(str(x) for x in r.get("load_avg_1min", [])),
            r.get("fast_decode_cameras", "-"),
            ",".join(map(str, r["detect_intervals"][1])) if "detect_intervals" in r else "-",
            _accuracy_cell(r.get("accuracy")),
            " / ".join(",".join(map(str, p)) for p in r["probe_ms"]) if "probe_ms" in r else "-",
            "yes" if r["real_time"] else "no")) + " |")
    print(f"largest N in real time: {best}")
    if args.plot:
        what = [f"fps {args.fps:g}" if args.fps else f"sample {args.sample}"]
        if args.detect_interval:
            what.append(f"detect_interval {args.detect_interval}")
        if args.motion_crop:
            what.append(f"motion_crop {args.motion_crop}")
        plot(rows, args.plot, "1080p25, " + ", ".join(what))
    report = {
        "src": _SRC, "fps": args.fps,
        "video": str(clip), "source_fps": FPS, "size": "1920x1080", "sample": args.sample,
        "motion_gate": not args.no_motion,
        "motion_crop": args.motion_crop or "config default",
        "detect_interval": "config default" if args.detect_interval is None
        else args.detect_interval,
        "fast_decode": args.fast_decode or "config default",
        "threads": args.threads or "cores / workers",
        "max_inflight": args.max_inflight or "config default",
        "workers": args.workers, "max_batch": args.max_batch,
        "decoder_nice": "reader default" if args.decoder_nice is None else args.decoder_nice,
        "duration_s": args.duration, "cpu_count": os.cpu_count(), "machine": platform.node(),
        "python": platform.python_version(), "results": rows, "largest_realtime_n": best,
        "criterion": "every camera decodes >= 95% of 25 fps and <= 5% of sampled frames dropped",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"report: {args.out}")
    return 0


def plot(rows: list[dict], path: Path, what: str) -> None:
    """RSS and CPU per camera against N, every run a point (runs of one N side by side)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    n = [r["cameras"] for r in rows]
    a.plot(n, [r["rss_per_camera_mb"] for r in rows], "o")
    a.plot(n, [r["peak_rss_mb"] for r in rows], "s", alpha=0.5)
    a.set(xlabel="cameras", ylabel="MiB", title="RSS per camera (o), peak RSS (s)")
    b.plot(n, [r["cpu_per_camera_percent"] for r in rows], "o")
    for r in rows:
        b.annotate(f"{r['load_avg_1min'][1]:.0f}", (r["cameras"], r["cpu_per_camera_percent"]),
                   fontsize=7, textcoords="offset points", xytext=(4, 4))
    b.set(xlabel="cameras", ylabel="% of one core", title="CPU per camera (label: load avg)")
    for ax in (a, b):
        ax.grid(alpha=0.3)
    fig.suptitle(f"scripts/bench_stream.py, {what}, 2 shared cores")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)


if __name__ == "__main__":
    sys.exit(main())
