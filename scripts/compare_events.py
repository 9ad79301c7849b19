"""Are two runs' events the same? Compares the events of two JSON Lines files (`platestream run
--print-events json` output, or a jsonl output) by camera, event_id, plate, score, box,
position, direction and vehicle type; prints the table and writes a JSON report.

    python scripts/compare_events.py OLD.jsonl NEW.jsonl [--out reports/compare_events.json]

For a deterministic run use `realtime: false` (a real-time run samples frames by wall clock).
Exit code 0 when the events are the same, 1 when they differ.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def key(e: dict) -> dict:
    r = e["results"][0]
    return {"camera": e["camera_id"], "event_id": e["event_id"], "plate": r["plate"],
            "score": r["score"], "box": r["box"], "position_sec": r.get("position_sec"),
            "direction": r.get("direction"), "vehicle": r["vehicle"]["type"]}


def load(path: Path) -> list[dict]:
    rows = [key(json.loads(line)) for line in path.read_text().splitlines() if line.strip()]
    return sorted(rows, key=lambda k: (k["camera"], k["position_sec"] or 0, k["plate"]))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("old", type=Path)
    p.add_argument("new", type=Path)
    p.add_argument("--out", type=Path, default=ROOT / "reports" / "compare_events.json")
    args = p.parse_args()
    old, new = load(args.old), load(args.new)
    same = old == new
    for side, rows in (("old", old), ("new", new)):
        for k in rows:
            print(f"{side}  {k['camera']:<11} {k['plate']:<9} {k['score']:.3f}  "
                  f"{k['position_sec']!s:>7} s  dir {k['direction']!s:>4}  {k['vehicle']:<10} "
                  f"{k['event_id']}")
    print("SAME" if same else "DIFFERENT")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"old": str(args.old), "new": str(args.new), "same": same,
                                    "old_events": old, "new_events": new}, indent=2) + "\n")
    print(f"report: {args.out}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
