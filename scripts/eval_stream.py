#!/usr/bin/env python3
"""Stream accuracy on a live feed: the labelled videos through a real RTSP server, N loops.

For each labelled video of ``evaldata/videos.jsonl`` (the set stays open: a new clip is a new
line there) the tests' GStreamer RTSP server (tests/stream/rtsp_server.py, Debian's
/usr/bin/python3) serves the clip at real-time pace; ``platestream run`` watches it as a live
camera (``--print-events``). The server plays the file once per connection and the camera
reconnects at the end of stream, so N loops are N connections. With ``--continuous`` the clip
is instead repeated N times into one file (a stream copy with PyAV, no re-encoding), played
over one connection: each loop boundary is then a hard scene cut inside the stream.
Optionally a CPU load generator (a busy process using ~1 core, as on a shared edge box) runs
meanwhile.

Each event is placed on the clip's timeline by the wall time of its best frame (event
``timestamp`` minus the moment the server started playing that pass; in continuous mode the
loops are counted from the one start, so a camera that lags behind drifts by its lag) and
given to the labelled plate visible then; corrections (``updated: true``, same ``event_id``)
replace their event's read.
Per labelled plate it reports: events (vehicles reported), exact, wrong (the final read is not
the label), missed (loops without an event), duplicates (events beyond one per pass), time from
first sighting to the first event, and separately events of the burned-in overlay text and
events that match no labelled plate. Prints a table and writes JSON.

    .venv/bin/python scripts/eval_stream.py --loops 5 --load          # the issue's target run
    .venv/bin/python scripts/eval_stream.py --loops 2 --videos cars.mp4

Targets (issue 13): >= 98 % of events exact over 5 loops of both videos with the load on,
0 duplicates, 0 missed, 0 overlay events.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.bench_stream import detect_interval_arg  # noqa: E402
from scripts.benchlib import write_report  # noqa: E402

SYSTEM_PYTHON = "/usr/bin/python3"
RTSP_SERVER = ROOT / "tests" / "stream" / "rtsp_server.py"
OVERLAY_TEXTS = ("14B02819T",)  # burned-in toll text in cars.mp4: never a vehicle
# An event's best frame may be this far outside its plate's labelled window: a little early
# (labels are rounded), much later (the camera decodes behind the server's clock: RTSP set-up,
# stream probing, and on a loaded machine seconds of frames buffered). Within a pass the
# plate text then decides between the plates whose windows fit.
EARLY_S, LATE_S = 1.0, 15.0


def loop_video(src: Path, dst: Path, loops: int) -> float:
    """Write ``src``'s video track ``loops`` times into ``dst`` (stream copy); the loop
    length in seconds."""
    import av

    with av.open(str(src)) as inp:
        vin = inp.streams.video[0]
        packets = [p for p in inp.demux(vin) if p.dts is not None]
    tb = vin.time_base
    first = min(p.pts for p in packets if p.pts is not None)
    last = max(p.pts for p in packets if p.pts is not None)
    step = int(round((last - first) / max(1, len(packets) - 1)))  # one mean frame interval
    length = last - first + step
    with av.open(str(src)) as inp, av.open(str(dst), "w", format="mp4") as out:
        vin = inp.streams.video[0]
        vout = out.add_stream_from_template(vin)
        for k in range(loops):
            inp.seek(0)
            for p in inp.demux(vin):
                if p.dts is None:
                    continue
                p.pts = p.pts - first + k * length
                p.dts = p.dts - first + k * length
                p.stream = vout
                out.mux(p)
    return float(length * tb)


class RtspServer:
    def __init__(self, video: Path, port: int) -> None:
        self.proc = subprocess.Popen(
            [SYSTEM_PYTHON, str(RTSP_SERVER), str(video), str(port), "/stream", "--announce"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline().strip()
        if line != "READY":
            self.stop()
            raise SystemExit(f"eval_stream: RTSP server did not start: {line!r}")
        self.play_times: list[float] = []
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        for line in self.proc.stdout:
            if line.startswith("CLIENT "):
                self.play_times.append(float(line.split()[1]))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def busy_core() -> subprocess.Popen:
    """~1 core of load (a spinning process), as another program on a shared edge box."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def run_video(label: dict, clip: Path, loops: int, args: argparse.Namespace,
              tmp: Path) -> dict:
    import yaml

    if args.continuous:
        served = tmp / f"{clip.stem}_x{loops}.mp4"
        loop_len = loop_video(clip, served, loops)
    else:
        served, loop_len = clip, float(label["duration_sec"])
    port = free_port()
    server = RtspServer(served, port)
    cam = {
        "url": f"rtsp://127.0.0.1:{port}/stream", "sample": args.sample,
        "memory_decay": round(label["duration_sec"] / 2, 2),
        "max_prediction_delay": args.max_prediction_delay, "reconnect_max": 2,
        **({"max_inflight": args.max_inflight} if args.max_inflight else {}),
        **({"motion_crop": args.motion_crop == "on"} if args.motion_crop else {}),
        **({"detect_interval": args.detect_interval}
           if args.detect_interval is not None else {}),
    }
    cfg = {"output_dir": str(tmp / f"out_{clip.stem}"), "spool": "spool.sqlite",
           "engine": {"workers": args.workers}, "cameras": {"cam": cam}}
    cfg_path = tmp / f"{clip.stem}.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    env = dict(os.environ)
    env.setdefault("PLATESTREAM_MODELS", str(ROOT.parent / "shared" / "models"))
    if args.code:  # another checkout's code (e.g. the unchanged main) with this environment
        env["PYTHONPATH"] = str(Path(args.code).resolve())
    cmd = [sys.executable, "-m", "stream.cli", "run", str(cfg_path), "--print-events", "json"]
    events: list[tuple[float, dict]] = []
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=open(tmp / f"{clip.stem}.log",
                                                                     "w"), text=True, env=env)

    def read_events() -> None:
        for line in proc.stdout:
            if line.startswith("{"):
                events.append((time.time(), json.loads(line)))

    reader = threading.Thread(target=read_events, daemon=True)
    reader.start()
    passes = 1 if args.continuous else loops
    try:
        deadline = time.time() + 120 + passes * (loop_len + 10)
        while len(server.play_times) < passes and time.time() < deadline \
                and proc.poll() is None:
            time.sleep(0.1)
        if len(server.play_times) < passes:
            raise SystemExit(f"eval_stream: the camera connected {len(server.play_times)} "
                             f"times, expected {passes}")
        end = server.play_times[-1] + (loops if args.continuous else 1) * loop_len + 1.0
        while time.time() < end and proc.poll() is None:
            time.sleep(0.1)
        if not args.continuous:
            # A loaded machine decodes behind the server: the camera has seen the whole last
            # pass when it connects again (after its end of stream). Bounded wait.
            deadline = time.time() + args.catch_up
            while len(server.play_times) <= passes and time.time() < deadline \
                    and proc.poll() is None:
                time.sleep(0.1)
        server.stop()  # end of stream: open tracks end; no further playback
        time.sleep(args.settle)
    finally:
        server.stop()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        reader.join(5)
    starts = server.play_times[:passes]
    if args.continuous:
        starts = [starts[0] + k * loop_len for k in range(loops)]
    elif len(server.play_times) > passes:  # a pass begun after the last one: not counted
        cutoff = server.play_times[passes]
        events = [(a, d) for a, d in events
                  if datetime.fromisoformat(d["timestamp"]).timestamp() < cutoff]
    result = score(label, events, starts, loop_len)
    result["raw"] = {"starts": starts, "events": [
        {"arrived": a, "event_id": d.get("event_id"), "updated": d.get("updated", False),
         "timestamp": d["timestamp"], "plate": d["results"][0]["plate"],
         "score": d["results"][0]["score"]} for a, d in events]}
    return result


def _ratio(a: str, b: str) -> float:
    from rapidfuzz import fuzz

    return fuzz.ratio(a.upper(), b.upper())


def score(label: dict, events: list[tuple[float, dict]], starts: list[float],
          loop_len: float) -> dict:
    """Events -> per labelled plate figures (see the module docstring)."""
    plates = label["plates"]
    # event_id -> (arrival of its first version, its latest data)
    by_id: dict[str, list] = {}
    for arrived, data in events:
        eid = data.get("event_id") or f"noid{len(by_id)}"
        if eid in by_id:
            by_id[eid][1] = data
            by_id[eid][2] += 1
        else:
            by_id[eid] = [arrived, data, 0]
    per = {p["text"]: {"events": 0, "exact": 0, "wrong": 0, "missed": 0, "duplicates": 0,
                       "corrected": 0, "wrong_reads": [], "latency_s": [],
                       "_passes": {}} for p in plates}
    overlay, other = [], []
    for arrived, data, n_updates in by_id.values():
        text = data["results"][0]["plate"].upper()
        wall = datetime.fromisoformat(data["timestamp"]).timestamp()
        k = max([i for i, t in enumerate(starts) if t <= wall + 0.5] or [0])
        pos = wall - starts[k]
        if any(_ratio(text, o) >= 80 for o in OVERLAY_TEXTS):
            overlay.append(text)
            continue
        near = [p for p in plates
                if p["first_seen_sec"] - EARLY_S <= pos <= p["last_seen_sec"] + LATE_S]
        if not near:
            other.append({"plate": text, "position_sec": round(pos, 2), "loop": k})
            continue
        p = max(near, key=lambda p: _ratio(text, p["text"]))
        if _ratio(text, p["text"]) < 40:
            other.append({"plate": text, "position_sec": round(pos, 2), "loop": k})
            continue
        s = per[p["text"]]
        s["events"] += 1
        s["corrected"] += bool(n_updates)
        if text == p["text"]:
            s["exact"] += 1
        else:
            s["wrong"] += 1
            s["wrong_reads"].append(text)
        s["_passes"][k] = s["_passes"].get(k, 0) + 1
        if s["_passes"][k] == 1:
            s["latency_s"].append(round(arrived - (starts[k] + p["first_seen_sec"]), 2))
    for s in per.values():
        passes = s.pop("_passes")
        s["missed"] = len(starts) - len(passes)
        s["duplicates"] = sum(n - 1 for n in passes.values())
        lat = s.pop("latency_s")
        s["sighting_to_event_s"] = {
            "median": round(statistics.median(lat), 2) if lat else None,
            "max": max(lat) if lat else None,
        }
    return {"plates": per, "overlay_events": overlay, "other_events": other,
            "loop_length_s": round(loop_len, 3), "corrections": sum(
                bool(v[2]) for v in by_id.values())}


def rescore(path: Path, out: Path) -> int:
    """Score an earlier report's raw events again (after a change of the scoring rules)."""
    report = json.loads(path.read_text())
    data = Path(os.environ.get("PLATESTREAM_DATA", ROOT.parent / "shared" / "evaldata"))
    with open(data / "videos.jsonl") as f:
        labels = {Path(v["video"]).name: v for v in map(json.loads, f)}
    for name, r in report["videos"].items():
        raw = r["raw"]
        events = [(e["arrived"], {"event_id": e["event_id"], "timestamp": e["timestamp"],
                                  "updated": e["updated"],
                                  "results": [{"plate": e["plate"], "score": e["score"]}]})
                  for e in raw["events"]]
        report["videos"][name] = {**score(labels[name], events, raw["starts"],
                                          r["loop_length_s"]), "raw": raw}
    report["rescored_from"] = str(path)
    report["totals"] = print_table(report["videos"])
    out.write_text(json.dumps(report, indent=2))
    print(f"report: {out}")
    return 0


def print_table(results: dict) -> dict:
    header = ("video", "plate", "events", "exact", "wrong", "missed", "dup", "corrected",
              "sighting->event median/max s", "wrong reads")
    print(" | ".join(header))
    tot = {"events": 0, "exact": 0, "missed": 0, "duplicates": 0, "overlay": 0, "other": 0}
    for name, r in results.items():
        for text, s in r["plates"].items():
            lat = s["sighting_to_event_s"]
            print(" | ".join(str(v) for v in (
                name, text, s["events"], s["exact"], s["wrong"], s["missed"], s["duplicates"],
                s["corrected"], f"{lat['median']}/{lat['max']}",
                ",".join(sorted(set(s["wrong_reads"]))) or "-")))
            for k in ("events", "exact", "missed", "duplicates"):
                tot[k] += s[k]
        tot["overlay"] += len(r["overlay_events"])
        tot["other"] += len(r["other_events"])
        print(f"{name}: overlay events {len(r['overlay_events'])}, unlabelled events "
              f"{[o['plate'] for o in r['other_events']]}")
    exact_pct = round(100 * tot["exact"] / tot["events"], 1) if tot["events"] else 0.0
    ok = (exact_pct >= 98 and tot["duplicates"] == 0 and tot["missed"] == 0
          and tot["overlay"] == 0)
    print(f"total: {tot['events']} events, {exact_pct} % exact, {tot['missed']} missed, "
          f"{tot['duplicates']} duplicates, {tot['overlay']} overlay, {tot['other']} unlabelled"
          f" -> targets {'met' if ok else 'NOT met'}")
    return {**tot, "exact_percent": exact_pct, "targets_met": ok}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--loops", type=int, default=5, help="passes of each clip (N)")
    p.add_argument("--continuous", action="store_true",
                   help="one connection playing the clip N times (hard cuts between loops)")
    p.add_argument("--load", action="store_true", help="run a busy process using ~1 core")
    p.add_argument("--videos", default="", help="comma-separated clip names (default: all in "
                   "videos.jsonl)")
    p.add_argument("--sample", type=int, default=1, help="camera 'sample'")
    p.add_argument("--max-prediction-delay", type=float, default=6.0)
    p.add_argument("--motion-crop", choices=["on", "off"], default=None,
                   help="camera motion_crop (default: the code's default)")
    p.add_argument("--detect-interval", type=detect_interval_arg, default=None,
                   help="camera detect_interval, 0-4 or auto (default: the code's default)")
    p.add_argument("--workers", type=int, default=2, help="engine workers")
    p.add_argument("--max-inflight", type=int, default=None,
                   help="camera max_inflight (default: the code's default)")
    p.add_argument("--catch-up", type=float, default=60.0,
                   help="seconds to wait for the camera to finish the last pass")
    p.add_argument("--settle", type=float, default=4.0,
                   help="seconds after the stream ends before stopping `run`")
    p.add_argument("--code", help="run the platestream code of this checkout (e.g. a worktree "
                   "of the unchanged main, for a before/after table) with this environment")
    p.add_argument("--label", default="", help="a name for this run in the report")
    p.add_argument("--out", type=Path, default=ROOT / "reports" / "eval_stream.json")
    p.add_argument("--rescore", type=Path, metavar="JSON",
                   help="score the raw events of an earlier report again (no run)")
    args = p.parse_args()
    if args.rescore:
        return rescore(args.rescore, args.out)
    if not os.path.exists(SYSTEM_PYTHON):
        print("eval_stream: needs Debian's /usr/bin/python3 with gi (GStreamer RTSP server)",
              file=sys.stderr)
        return 2
    data = Path(os.environ.get("PLATESTREAM_DATA", ROOT.parent / "shared" / "evaldata"))
    with open(data / "videos.jsonl") as f:
        labels = [json.loads(line) for line in f if line.strip()]
    wanted = {v for v in args.videos.split(",") if v}
    labels = [lb for lb in labels if not wanted or Path(lb["video"]).name in wanted]
    load_start = os.getloadavg()
    load = busy_core() if args.load else None
    results = {}
    try:
        with tempfile.TemporaryDirectory(prefix="eval_stream_") as tmp:
            for lb in labels:
                name = Path(lb["video"]).name
                print(f"{name}: {args.loops} loops over RTSP...", file=sys.stderr, flush=True)
                results[name] = run_video(lb, data / lb["video"], args.loops, args, Path(tmp))
    finally:
        if load is not None:
            load.kill()
            load.wait()
    totals = print_table(results)
    report = {
        "label": args.label, "code": args.code or str(ROOT), "loops": args.loops,
        "continuous": args.continuous,
        "load": args.load, "sample": args.sample, "max_inflight": args.max_inflight,
        "motion_crop": args.motion_crop, "detect_interval": args.detect_interval,
        "max_prediction_delay": args.max_prediction_delay, "workers": args.workers,
        "memory_decay": "half the clip's duration", "cpu_count": os.cpu_count(),
        "loadavg_start": load_start, "machine": platform.node(),
        "totals": totals,
        "videos": results,
    }
    report["loadavg_end"] = os.getloadavg()
    write_report(args.out, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
