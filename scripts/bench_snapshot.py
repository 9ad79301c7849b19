#!/usr/bin/env python3
"""Benchmark the Snapshot API: K concurrent clients POST real images for T seconds.

Starts ``platestream serve`` as a subprocess (so its memory is measured alone) unless
``--url`` points at a running server, then for each K reports requests/s, p50/p95 latency,
errors and the server's peak RSS. Prints a table and writes a JSON report.

    PLATESTREAM_MODELS=../shared/models .venv/bin/python scripts/bench_snapshot.py \\
        --clients 1,8 --duration 30
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.benchlib import rss_mb  # noqa: E402

EVALDATA = Path(os.environ.get("PLATESTREAM_SHARED", ROOT.parent / "shared")) / "evaldata"


def load_images(n: int, seed: int) -> list[tuple[str, bytes]]:
    paths = sorted((EVALDATA / "images").glob("*/*.jpg"))
    if not paths:
        sys.exit(f"bench_snapshot: no images under {EVALDATA / 'images'}")
    random.Random(seed).shuffle(paths)
    return [(p.name, p.read_bytes()) for p in paths[:n]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def wait_ready(url: str, proc: subprocess.Popen | None, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as s:
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                sys.exit(f"bench_snapshot: server exited with code {proc.returncode}")
            try:
                async with s.get(url + "/") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.3)
    sys.exit(f"bench_snapshot: server at {url} not ready after {timeout:.0f} s")


async def one_request(session: aiohttp.ClientSession, url: str, image: tuple[str, bytes],
                      headers: dict[str, str], regions: list[str]) -> tuple[int, float]:
    form = aiohttp.FormData()
    form.add_field("upload", image[1], filename=image[0], content_type="image/jpeg")
    for r in regions:
        form.add_field("regions", r)
    t0 = time.perf_counter()
    try:
        async with session.post(url + "/v1/plate-reader/", data=form, headers=headers) as r:
            await r.read()
            status = r.status
    except (aiohttp.ClientError, TimeoutError):
        status = 0
    return status, (time.perf_counter() - t0) * 1000


async def run_level(url: str, k: int, duration: float, images: list[tuple[str, bytes]],
                    headers: dict[str, str], regions: list[str], pid: int | None) -> dict:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    peak = [rss_mb(pid) if pid else None]
    stop_at = time.monotonic() + duration

    async def client(i: int) -> None:
        n = i
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as s:
            while time.monotonic() < stop_at:
                status, ms = await one_request(s, url, images[n % len(images)], headers, regions)
                n += k
                statuses[status] = statuses.get(status, 0) + 1
                if status == 201:
                    latencies.append(ms)

    async def sample_rss() -> None:
        while pid and time.monotonic() < stop_at:
            now = rss_mb(pid)
            if now is not None and (peak[0] is None or now > peak[0]):
                peak[0] = now
            await asyncio.sleep(0.2)

    t0 = time.monotonic()
    await asyncio.gather(sample_rss(), *(client(i) for i in range(k)))
    elapsed = time.monotonic() - t0
    ok = statuses.get(201, 0)
    q = statistics.quantiles(latencies, n=20, method="inclusive") if len(latencies) > 1 else None
    return {
        "clients": k,
        "seconds": round(elapsed, 2),
        "requests": sum(statuses.values()),
        "ok": ok,
        "requests_per_s": round(ok / elapsed, 2),
        "p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        "p95_ms": round(q[18], 1) if q else (round(latencies[0], 1) if latencies else None),
        "errors": sum(n for s, n in statuses.items() if s != 201),
        "status_counts": {str(s): n for s, n in sorted(statuses.items())},
        "peak_rss_mb": round(peak[0], 1) if peak[0] is not None else None,
    }


async def engine_stats(url: str, headers: dict[str, str]) -> dict | None:
    try:
        async with aiohttp.ClientSession() as s, s.get(url + "/status/", headers=headers) as r:
            return (await r.json()).get("engine") if r.status == 200 else None
    except aiohttp.ClientError:
        return None


def start_server(args: argparse.Namespace, port: int, data_dir: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "stream.cli", "serve", "--host", "127.0.0.1", "--port",
           str(port), "--data-dir", data_dir,
           "--batch-window-ms", str(args.batch_window_ms), "--queue-size", str(args.queue_size)]
    for opt in ("threads", "workers"):
        if getattr(args, opt):
            cmd += [f"--{opt}", str(getattr(args, opt))]
    if args.token:
        cmd += ["--token", args.token]
    log = open(Path(data_dir) / "server.log", "w")  # noqa: SIM115 - lives as long as the server
    return subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)


async def main_async(args: argparse.Namespace) -> dict:
    levels = [int(k) for k in args.clients.split(",")]
    images = load_images(args.images, args.seed)
    headers = {"Authorization": f"Token {args.token}"} if args.token else {}
    proc = None
    with tempfile.TemporaryDirectory(prefix="bench_snapshot_") as data_dir:
        if args.url:
            url, pid = args.url.rstrip("/"), args.pid
        else:
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            proc = start_server(args, port, data_dir)
            pid = proc.pid
        try:
            await wait_ready(url, proc)
            await run_level(url, 1, args.warmup, images, headers, args.regions, None)  # warm-up
            results = []
            for k in levels:
                before = await engine_stats(url, headers)
                res = await run_level(url, k, args.duration, images, headers, args.regions, pid)
                after = await engine_stats(url, headers)
                if before and after and after["batches"] > before["batches"]:
                    res["mean_batch"] = round((after["processed"] - before["processed"])
                                              / (after["batches"] - before["batches"]), 2)
                results.append(res)
                print(f"  K={k}: {res['requests_per_s']} req/s", file=sys.stderr)
        finally:
            if proc is not None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
    return {
        "benchmark": "snapshot_http",
        "url": args.url or "subprocess: platestream serve",
        "duration_s": args.duration,
        "images": len(images),
        "regions": args.regions,
        "server": {"threads": args.threads, "workers": args.workers,
                   "batch_window_ms": args.batch_window_ms, "queue_size": args.queue_size},
        "host": {"cpus": os.cpu_count(), "platform": platform.platform(),
                 "python": platform.python_version()},
        "commit": _git_commit(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "results": results,
    }


def _git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def print_table(report: dict) -> None:
    cols = ("clients", "requests_per_s", "p50_ms", "p95_ms", "errors", "mean_batch",
            "peak_rss_mb")
    print(" | ".join(f"{c:>14}" for c in cols))
    print("-+-".join("-" * 14 for _ in cols))
    for row in report["results"]:
        print(" | ".join(f"{'' if row.get(c) is None else row.get(c):>14}" for c in cols))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", default="1,8", help="comma-separated K values (default 1,8)")
    p.add_argument("--duration", type=float, default=30.0, help="seconds per K (default 30)")
    p.add_argument("--warmup", type=float, default=3.0, help="warm-up seconds (default 3)")
    p.add_argument("--images", type=int, default=64, help="distinct images to cycle through")
    p.add_argument("--regions", action="append", default=[], help="regions field (repeatable)")
    p.add_argument("--url", help="benchmark this running server instead of starting one")
    p.add_argument("--pid", type=int, help="with --url: the server's pid, for its RSS")
    p.add_argument("--token", help="Authorization token to send (and require)")
    p.add_argument("--threads", type=int, default=None,
                   help="ONNX Runtime threads per model run (default: the server's)")
    p.add_argument("--workers", type=int, default=None,
                   help="engine threads (default: the server's)")
    p.add_argument("--batch-window-ms", type=float, default=5.0)
    p.add_argument("--queue-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(ROOT / "reports" / "bench_snapshot.json"))
    args = p.parse_args()
    if args.duration <= 0 or any(int(k) < 1 for k in args.clients.split(",")):
        p.error("--duration must be > 0 and every K >= 1")
    report = asyncio.run(main_async(args))
    print_table(report)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"report: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
