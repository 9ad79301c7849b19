"""What the benchmark scripts share: a latency summary, a process's resident memory, writing
the JSON report, and stopping the processes a script started. Imported as ``scripts.benchlib``
(the repository root on ``sys.path``)."""

from __future__ import annotations

import json
import statistics
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def latency_summary(ms: list[float]) -> dict[str, Any]:
    """Count, p50, mean and p95 (None for a single timing) of ``ms``, rounded to 0.01 ms."""
    return {"images": len(ms), "p50_ms": round(statistics.median(ms), 2),
            "mean_ms": round(statistics.mean(ms), 2),
            "p95_ms": round(statistics.quantiles(ms, n=20)[-1], 2) if len(ms) > 1 else None}


def rss_mb(pid: int | str = "self") -> float | None:
    """Resident memory (VmRSS) of process ``pid`` now, MiB; None when it cannot be read (the
    process has gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def write_report(out: Path | str, report: Any) -> Path:
    """``report`` as indented JSON at ``out`` (its folder made), and a line saying where."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"report: {out}")
    return out


def stop_processes(procs: Iterable[subprocess.Popen], timeout: float = 15.0) -> None:
    """SIGTERM each process still running, in order; kill it if it has not ended in
    ``timeout`` seconds."""
    for proc in procs:
        if proc.poll() is not None:
            continue
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
