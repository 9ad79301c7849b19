#!/usr/bin/env python3
"""Plate search over a big event store: fill it, then time searches (store and HTTP API).

    .venv/bin/python scripts/bench_store.py                 # 1,000,000 events, SQLite
    .venv/bin/python scripts/bench_store.py --events 100000 --url postgresql://...

Fills a fresh store in a temporary directory (or --dir) with synthetic Stream events of
realistic size (a camera sees each vehicle several times; ``--plates`` distinct plates), then
runs ``--queries`` plate searches of each kind — exact, one misread character (fuzzy), a
wildcard — through ``EventStore.query`` and through ``GET /api/v1/events`` on a real aiohttp
server on 127.0.0.1. Prints and writes JSON (``--out``): p50/p95 ms per kind and the store's
size on disk.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import string
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stream.store import EventQuery, StoreConfig, open_store  # noqa: E402

CAMERAS = ("gate", "exit", "toll", "street")
LISTS = ("staff", "banned")


def _plate(rng: random.Random) -> str:
    L, D = string.ascii_lowercase, string.digits
    fmt = rng.choice(("LLDDDLL", "DDLDDDDD", "LLDDLLL", "LLLDDDD", "DLLLDDD"))
    return "".join(rng.choice(L if c == "L" else D) for c in fmt)


def _event(i: int, plate: str, ts: float, rng: random.Random) -> dict:
    cam = CAMERAS[i % len(CAMERAS)]
    x, y = rng.randint(0, 1100), rng.randint(0, 600)
    known = ({"list": rng.choice(LISTS), "name": "N", "plate": plate, "distance": 0}
             if rng.random() < 0.02 else None)
    t = datetime.fromtimestamp(ts, UTC)
    return {
        "event_id": f"{i:08d}-{rng.getrandbits(64):016x}", "camera_id": cam,
        "filename": f"{cam}_screenshots/{t:%y-%m-%d/%H-%M-%S.%f}.jpg",
        "timestamp": t.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z",
        "timestamp_local": t.isoformat(), "processing_time": 41.2, "image_width": 1280,
        "image_height": 720,
        "results": [{
            "box": {"xmin": x, "ymin": y, "xmax": x + 90, "ymax": y + 30}, "plate": plate,
            "region": {"code": "fr", "score": 0.81}, "score": 0.902, "dscore": 0.871,
            "candidates": [{"score": 0.902, "plate": plate}, {"score": 0.71, "plate": plate[:-1]}],
            "vehicle": {"score": 0.84, "type": "Sedan",
                        "box": {"xmin": x - 80, "ymin": y - 120, "xmax": x + 170, "ymax": y + 60}},
            "model_make": [], "color": [], "orientation": [],
            "direction": rng.choice((90, 270)), "source_url": f"rtsp://{cam}.local/stream",
        }],
        "event_id_source": "bench", "known_plate": known,
    }


def fill(store, n: int, n_plates: int, seed: int) -> tuple[list[str], float]:
    rng = random.Random(seed)
    plates = list({_plate(rng) for _ in range(n_plates)})
    t0 = time.time() - 20 * 86400  # inside keep_days: retention keeps them all
    start = time.perf_counter()
    batch = []
    for i in range(n):
        batch.append(_event(i, rng.choice(plates), t0 + i * (20 * 86400 / n), rng))
        if len(batch) == 5000:
            store.put_many(batch)
            batch = []
            if (i + 1) % 100_000 == 0:
                print(f"  {i + 1} events, {time.perf_counter() - start:.0f} s", flush=True)
    if batch:
        store.put_many(batch)
    return plates, time.perf_counter() - start


def _misread(p: str, rng: random.Random) -> str:
    i = rng.randrange(len(p))
    return p[:i] + rng.choice(string.ascii_lowercase + string.digits) + p[i + 1:]


def _pct(xs: list[float]) -> dict:
    xs = sorted(xs)
    return {"p50_ms": round(statistics.median(xs), 2),
            "p95_ms": round(xs[min(len(xs) - 1, int(0.95 * len(xs)))], 2),
            "max_ms": round(xs[-1], 2), "n": len(xs)}


def _queries(plates: list[str], n: int, seed: int) -> dict[str, list[str]]:
    rng = random.Random(seed + 1)
    picks = [rng.choice(plates) for _ in range(n)]
    return {"exact": [p.upper() for p in picks],
            "fuzzy_one_misread": [_misread(p, rng).upper() for p in picks],
            "wildcard_prefix": [p[:3].upper() + "*" for p in picks],
            "unknown_plate": [_plate(rng).upper() for _ in range(n)]}


def time_store(store, queries: dict[str, list[str]]) -> dict:
    out = {}
    for kind, qs in queries.items():
        times, hits = [], 0
        for q in qs:
            t = time.perf_counter()
            page = store.query(EventQuery(plate=q, limit=50))
            times.append((time.perf_counter() - t) * 1000)
            hits += len(page.events)
        out[kind] = {**_pct(times), "mean_results": round(hits / len(qs), 1)}
    return out


async def _time_http(store, queries: dict[str, list[str]]) -> dict:
    import aiohttp
    from aiohttp import web

    from stream.http import ServerSettings, create_app

    class _NoEngine:  # the event API never runs inference; the app only reads max_batch
        max_batch = 1

    app = create_app(_NoEngine(), ServerSettings(data_dir=tempfile.mkdtemp()),  # type: ignore
                     store=store)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    out = {}
    try:
        async with aiohttp.ClientSession() as s:
            for kind, qs in queries.items():
                times = []
                for q in qs:
                    t = time.perf_counter()
                    async with s.get(f"http://127.0.0.1:{port}/api/v1/events",
                                     params={"plate": q, "limit": "50"}) as r:
                        await r.read()
                        assert r.status == 200, r.status
                    times.append((time.perf_counter() - t) * 1000)
                out[kind] = _pct(times)
    finally:
        await runner.cleanup()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--plates", type=int, default=200_000, help="distinct plates")
    ap.add_argument("--queries", type=int, default=200, help="searches of each kind")
    ap.add_argument("--url", help="postgresql://... (default: SQLite in --dir)")
    ap.add_argument("--pg-temp", action="store_true",
                    help="start a throwaway PostgreSQL (Debian's postgresql package) and use it")
    ap.add_argument("--dir", help="state directory (default: a temporary one, removed)")
    ap.add_argument("--keep", action="store_true", help="keep the filled store")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", default="reports/bench_store.json")
    a = ap.parse_args()
    state = Path(a.dir) if a.dir else Path(tempfile.mkdtemp(prefix="bench-store-"))
    pg = None
    if a.pg_temp:
        from tests.stream.services import Postgres

        pg = Postgres()
        a.url = pg.create_db("bench")
    store = open_store(StoreConfig(url=a.url), state)
    try:
        print(f"filling {a.events} events ({a.plates} distinct plates) in "
              f"{store.kind} at {a.url and 'postgresql' or state}", flush=True)
        plates, fill_s = fill(store, a.events, a.plates, a.seed)
        size = store.size_on_disk()
        print(f"filled in {fill_s:.0f} s; on disk {size['database_bytes'] / 2**20:.0f} MiB",
              flush=True)
        queries = _queries(plates, a.queries, a.seed)
        time_store(store, {k: v[:10] for k, v in queries.items()})  # warm the page cache
        direct = time_store(store, queries)
        http = asyncio.run(_time_http(store, queries))
        result = {
            "script": "scripts/bench_store.py", "backend": store.kind, "events": a.events,
            "distinct_plates": len(plates), "queries_per_kind": a.queries, "limit": 50,
            "fill_seconds": round(fill_s, 1), "fill_events_per_s": round(a.events / fill_s),
            "store_size_on_disk_bytes": size["database_bytes"],
            "store_size_on_disk_mib": round(size["database_bytes"] / 2**20, 1),
            "search_store": direct, "search_http": http,
            "load_average": os.getloadavg(), "cpus": os.cpu_count(),
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
        }
    finally:
        store.close()
        if pg is not None:
            pg.close()
        if not a.dir and not a.keep:
            shutil.rmtree(state, ignore_errors=True)
    print(json.dumps(result, indent=2))
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
