"""What a benchmark's cameras reported, against the labels of the clip they loop.

scripts/bench_stream.py loops re-timed copies of a labelled video (every source frame kept, so a
clip frame is a source frame); each camera writes its events as JSON Lines. An event is placed
by its ``position_sec`` (seconds into the pass) and the pass by its ``timestamp`` (the best
frame's wall time) minus that position; corrections (``updated``, same ``event_id``) replace
their event's read. Per camera and plate pass: an event with the label's text is exact, another
text wrong; passes of a labelled plate that ended inside the run without an event are missed,
events beyond one per pass duplicates; events that match no labelled plate (the clip's
burned-in overlay text among them) are other.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

__all__ = ["label_of", "score_cameras"]

# An event's best frame may be this far outside its plate's labelled window (labels are
# rounded; a plate is still read a little after its label ends). As scripts/eval_stream.py.
EARLY_S, LATE_S = 1.0, 2.0


def _ratio(a: str, b: str) -> float:
    from rapidfuzz import fuzz

    return fuzz.ratio(a.upper(), b.upper())


def label_of(name: str, index: Path) -> dict | None:
    """The line of ``index`` (a videos.jsonl) for the video file ``name``, None where the file
    or the line is missing."""
    if not index.exists():
        return None
    for line in index.read_text().splitlines():
        if line.strip() and Path(json.loads(line)["video"]).name == name:
            return json.loads(line)
    return None


def _events(path: Path) -> list[dict]:
    """The camera's events, each in its last version (corrections replace)."""
    by_id: dict[str, dict] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                data = json.loads(line)
                by_id[data.get("event_id") or f"noid{len(by_id)}"] = data
    return list(by_id.values())


def score_cameras(out_dir: Path, cameras: list[str], label: dict, clip_fps: float,
                  started: float, ended: float) -> dict:
    """Totals over ``cameras`` (``{out_dir}/{camera}.jsonl``) for the labelled ``label``
    (a line of evaldata/videos.jsonl) looped at ``clip_fps`` between the wall times
    ``started`` and ``ended``."""
    src_fps = label["frames"] / label["duration_sec"]
    loop_s = label["frames"] / clip_fps
    plates = [{"text": p["text"], "first": p["first_seen_frame"] / clip_fps,
               "last": (p["last_seen_frame"] + 1) / clip_fps} for p in label["plates"]]
    tot = {"expected": 0, "events": 0, "exact": 0, "wrong": 0, "missed": 0, "duplicates": 0,
           "other": 0, "wrong_reads": [], "other_reads": []}
    for cam in cameras:
        passes: dict[tuple[str, int], int] = {}
        for data in _events(out_dir / f"{cam}.jsonl"):
            r = data["results"][0]
            text, pos = r["plate"].upper(), r.get("position_sec")
            wall = datetime.fromisoformat(data["timestamp"].replace("Z", "+00:00")).timestamp()
            near = [p for p in plates if pos is not None
                    and p["first"] - EARLY_S <= pos <= p["last"] + LATE_S]
            best = max(near, key=lambda p: _ratio(text, p["text"]), default=None)
            if best is None or _ratio(text, best["text"]) < 40:
                tot["other"] += 1
                tot["other_reads"].append(text)
                continue
            k = round((wall - pos - started) / loop_s)  # the pass: its start's wall time
            passes[best["text"], k] = passes.get((best["text"], k), 0) + 1
            tot["events"] += 1
            if text == best["text"]:
                tot["exact"] += 1
            else:
                tot["wrong"] += 1
                tot["wrong_reads"].append(text)
        for p in plates:  # passes whose plate left the picture inside the run
            n = 0
            while started + n * loop_s + p["last"] <= ended:
                n += 1
            tot["expected"] += n
            seen = {k for (t, k) in passes if t == p["text"]}
            tot["missed"] += sum(k not in seen for k in range(n))
        tot["duplicates"] += sum(v - 1 for v in passes.values())
    tot["exact_share"] = round(tot["exact"] / tot["events"], 3) if tot["events"] else None
    tot["source_fps"] = round(src_fps, 3)
    return tot
