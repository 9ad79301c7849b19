#!/usr/bin/env python3
"""Hostile load on the Snapshot API: malformed, huge, slow and concurrent requests at once.

Starts ``platestream serve`` on 127.0.0.1 (a subprocess, so its memory is measured alone),
sends ``--requests`` attack requests (default 1200) with ``--concurrency`` in flight, while one
real client posts a real image in a loop; then reports the answers by status and kind, the
5xx count, the tracebacks in the server's log, its peak RSS (VmHWM) and the real client's
latency (p50/p95) during the attack against the same client on the idle server. Loopback
only; every loop is bounded. Prints a table and writes a JSON report.

    PLATESTREAM_MODELS=../shared/models .venv/bin/python scripts/hostile_load.py
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import random
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
EVALDATA = Path(os.environ.get("PLATESTREAM_SHARED", ROOT.parent / "shared")) / "evaldata"
CAR = EVALDATA / "images/us/car22.jpg"
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def proc_status(pid: int, key: str) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def png_bomb(width: int, height: int) -> bytes:
    """A real PNG of ``width`` x ``height`` black pixels, deflated to a few tens of kB."""
    raw_row = b"\x00" + b"\x00" * (width * 3)
    comp = zlib.compressobj(9)
    data = b"".join(comp.compress(raw_row) for _ in range(height)) + comp.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def multipart(fields: list[tuple[str, bytes, str | None]], boundary: str = "hostileb0und") -> bytes:
    out = bytearray()
    for name, value, filename in fields:
        out += f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"".encode()
        if filename:
            out += f'; filename="{filename}"'.encode()
        out += b"\r\n\r\n" + value + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out)


def request(body: bytes, ctype: str = "multipart/form-data; boundary=hostileb0und",
            extra: str = "", length: int | None = None) -> bytes:
    n = len(body) if length is None else length
    return (f"POST /v1/plate-reader/ HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {n}\r\nConnection: close\r\n{extra}\r\n").encode() + body


class Attack:
    """The attack kinds; each returns the raw bytes to send and how to send them."""

    def __init__(self, car: bytes, bomb: bytes, huge: bytes, big: bytes) -> None:
        self.car, self.bomb, self.huge, self.big = car, bomb, huge, big

    def kinds(self) -> dict[str, tuple[str, float]]:
        """kind -> (group, weight)."""
        return {
            "bad_content_length": ("malformed", 1), "huge_header": ("malformed", 1),
            "tls_hello": ("malformed", 1), "garbage_line": ("malformed", 1),
            "bad_boundary": ("malformed", 1), "bad_base64": ("malformed", 1),
            "not_an_image": ("malformed", 1), "truncated_jpeg": ("malformed", 1),
            "bad_config": ("malformed", 1), "bad_chunked": ("malformed", 1),
            "png_bomb_60mpx": ("huge", 2), "png_16mpx": ("huge", 2),
            "declared_50mb": ("huge", 1),
            "body_6mb": ("huge", 1), "base64_bomb": ("huge", 1),
            "stalled_body": ("slow", 2), "trickle_body": ("slow", 1),
            "valid": ("concurrent", 4),
        }

    def build(self, kind: str) -> tuple[bytes, float]:
        """(bytes to send, seconds to pause after the first part: slow kinds only)."""
        car = self.car
        if kind == "bad_content_length":
            return (f"POST /v1/plate-reader/ HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: -7"
                    "SECRET\r\n\r\n").encode(), 0
        if kind == "huge_header":
            return (b"GET /info/ HTTP/1.1\r\nHost: x\r\nX-Big: " + b"A" * 40_000 + b"\r\n\r\n"), 0
        if kind == "tls_hello":
            return b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(64), 0
        if kind == "garbage_line":
            return os.urandom(200) + b"\r\n\r\n", 0
        if kind == "bad_boundary":
            return request(b"--nope\r\nxx\r\n"), 0
        if kind == "bad_base64":
            return request(multipart([("upload", b"!!!not-base64!!!", None)])), 0
        if kind == "not_an_image":
            return request(multipart([("upload", b"hello" * 100, "a.jpg")])), 0
        if kind == "truncated_jpeg":
            return request(multipart([("upload", car[: len(car) // 3], "t.jpg")])), 0
        if kind == "bad_config":
            return request(multipart([("upload", car, "c.jpg"), ("config", b"{nope", None)])), 0
        if kind == "bad_chunked":
            head = (f"POST /v1/plate-reader/ HTTP/1.1\r\nHost: {HOST}\r\nTransfer-Encoding: "
                    "chunked\r\nContent-Type: multipart/form-data; boundary=b\r\n\r\n").encode()
            return head + b"zz\r\nxx\r\n0\r\n\r\n", 0
        if kind == "png_bomb_60mpx":
            return request(multipart([("upload", self.bomb, "bomb.png")])), 0
        if kind == "png_16mpx":  # under the pixel limit: really decoded, admitted by budget
            return request(multipart([("upload", self.big, "big.png")])), 0
        if kind == "declared_50mb":
            return request(b"x" * 1000, length=50 * 1024 * 1024), 0
        if kind == "body_6mb":
            return request(multipart([("upload", self.huge, "big.jpg")])), 0
        if kind == "base64_bomb":
            return request(multipart([("upload", base64.b64encode(self.bomb), None)])), 0
        if kind == "stalled_body":
            return request(multipart([("upload", car, "s.jpg")]))[:400], 3600.0
        if kind == "trickle_body":
            return request(multipart([("upload", car, "s.jpg")])), -1.0
        if kind == "valid":
            return request(multipart([("upload", car, "car.jpg")])), 0
        raise ValueError(kind)


async def send_raw(data: bytes, pause: float, timeout: float) -> str:
    """Send ``data`` on a fresh connection; the answer's status code, or what happened."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, PORT[0]), 10)
    except (OSError, TimeoutError):
        return "connect_failed"
    try:
        async with asyncio.timeout(timeout):
            if pause < 0:  # trickle: 64 bytes every 0.5 s until the server answers
                for i in range(0, len(data), 64):
                    writer.write(data[i:i + 64])
                    await writer.drain()
                    if reader.at_eof() or reader._buffer:  # noqa: SLF001 - answered already
                        break
                    await asyncio.sleep(0.5)
            else:
                writer.write(data)
                await writer.drain()
                if pause > 0:  # stalled: never send the rest; wait for the server's answer
                    pass
            line = await reader.readline()
            while await reader.read(65536):
                pass
    except TimeoutError:
        return "no_answer"
    except (ConnectionError, OSError):
        return "reset"
    finally:
        writer.close()
    parts = line.split(b" ")
    return parts[1].decode() if len(parts) > 1 and parts[1].isdigit() else (
        "closed" if not line else "not_http")


PORT = [0]


async def real_client(url: str, car: bytes, stop: asyncio.Event, out: list,
                      limit: int) -> None:
    """Posts the real image one request after another; latency of each 201, and statuses."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as s:
        for _ in range(limit):
            if stop.is_set():
                return
            form = aiohttp.FormData()
            form.add_field("upload", car, filename="car22.jpg")
            t0 = time.perf_counter()
            try:
                async with s.post(url, data=form) as r:
                    await r.read()
                    out.append((r.status, time.perf_counter() - t0))
                    if r.status == 429:
                        await asyncio.sleep(float(r.headers.get("Retry-After", "1")))
            except (aiohttp.ClientError, TimeoutError) as exc:
                out.append((type(exc).__name__, time.perf_counter() - t0))


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


async def main_async(args: argparse.Namespace) -> dict:
    car = CAR.read_bytes()
    rng = random.Random(args.seed)
    bomb = png_bomb(7746, 7746)  # 60 Mpx
    huge = car + os.urandom(6 * 1024 * 1024)  # 6 MiB on the wire (over the 5 MiB limit)
    big = png_bomb(3996, 3996)  # 16 Mpx, just under the default --max-pixels
    attack = Attack(car, bomb, huge, big)
    port = free_port()
    PORT[0] = port
    url = f"http://{HOST}:{port}/v1/plate-reader/"
    tmp = Path(tempfile.mkdtemp(prefix="hostile_"))
    log_path = tmp / "server.log"
    cmd = [sys.executable, "-m", "stream.cli", "serve", "--host", HOST, "--port", str(port),
           "--data-dir", str(tmp / "data"), "--body-timeout", str(args.body_timeout)]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(600):
            if proc.poll() is not None:
                raise SystemExit(f"hostile_load: server exited: {log_path.read_text()[-2000:]}")
            try:
                socket.create_connection((HOST, port), 0.5).close()
                break
            except OSError:
                await asyncio.sleep(0.2)
        # baseline: the real client alone
        idle: list = []
        await real_client(url, car, asyncio.Event(), idle, args.baseline)
        rss_before = proc_status(proc.pid, "VmRSS")

        kinds = attack.kinds()
        names = [k for k in kinds if not args.kinds or k in args.kinds.split(",")]
        weights = [kinds[k][1] for k in names]
        plan = rng.choices(names, weights=weights, k=args.requests)
        sem = asyncio.Semaphore(args.concurrency)
        results: list[tuple[str, str]] = []
        peak = [0.0]

        async def one(kind: str) -> None:
            async with sem:
                data, pause = attack.build(kind)
                timeout = args.body_timeout + 30 if kind in ("stalled_body", "trickle_body") \
                    else 60
                results.append((kind, await send_raw(data, pause, timeout)))

        async def sample() -> None:
            while True:
                peak[0] = max(peak[0], proc_status(proc.pid, "VmRSS") or 0)
                await asyncio.sleep(0.1)

        stop = asyncio.Event()
        during: list = []
        sampler = asyncio.create_task(sample())
        client = asyncio.create_task(real_client(url, car, stop, during, 100_000))
        t0 = time.perf_counter()
        await asyncio.gather(*(one(k) for k in plan))
        attack_s = time.perf_counter() - t0
        stop.set()
        await client
        sampler.cancel()
        hwm = proc_status(proc.pid, "VmHWM")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    log_text = log_path.read_text(errors="replace")
    by_status = Counter(s for _, s in results)
    by_kind: dict[str, Counter] = {}
    for kind, s in results:
        by_kind.setdefault(kind, Counter())[s] += 1
    ok_idle = [t for s, t in idle if s == 201]
    ok_during = [t for s, t in during if s == 201]
    fivexx = sum(n for s, n in by_status.items() if s.startswith("5"))
    fivexx += sum(1 for s, _ in during if str(s).startswith("5"))
    return {
        "script": "scripts/hostile_load.py",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "loadavg": os.getloadavg()},
        "settings": {"requests": args.requests, "concurrency": args.concurrency,
                     "kinds": args.kinds or "all",
                     "body_timeout_s": args.body_timeout, "seed": args.seed},
        "attack_seconds": round(attack_s, 1),
        "answers_by_status": dict(sorted(by_status.items())),
        "answers_by_kind": {k: dict(sorted(c.items())) for k, c in sorted(by_kind.items())},
        "groups": {g: sum(1 for k, _ in results if kinds[k][0] == g)
                   for g in ("malformed", "huge", "slow", "concurrent")},
        "server_5xx": fivexx,
        "tracebacks_in_log": log_text.count("Traceback"),
        "rss_mb_before_attack": rss_before,
        "peak_rss_mb_sampled": round(peak[0], 1),
        "peak_rss_mb_vmhwm": hwm,
        "real_client": {
            "idle": {"n": len(idle), "ok": len(ok_idle),
                     "p50_ms": _ms(pct(ok_idle, 0.5)), "p95_ms": _ms(pct(ok_idle, 0.95))},
            "during_attack": {"n": len(during), "ok": len(ok_during),
                              "statuses": dict(Counter(str(s) for s, _ in during)),
                              "p50_ms": _ms(pct(ok_during, 0.5)),
                              "p95_ms": _ms(pct(ok_during, 0.95))},
        },
    }


def _ms(v: float | None) -> float | None:
    return None if v is None else round(v * 1000, 1)


def print_table(r: dict) -> None:
    print(f"hostile load: {sum(r['answers_by_status'].values())} requests in "
          f"{r['attack_seconds']} s, groups {r['groups']}")
    print(f"{'kind':<20} answers")
    for kind, c in r["answers_by_kind"].items():
        print(f"{kind:<20} {', '.join(f'{s}: {n}' for s, n in c.items())}")
    print(f"answers by status: {r['answers_by_status']}")
    print(f"server 5xx: {r['server_5xx']}   tracebacks in log: {r['tracebacks_in_log']}")
    print(f"RSS before attack {r['rss_mb_before_attack']:.0f} MB, peak VmHWM "
          f"{r['peak_rss_mb_vmhwm']:.0f} MB")
    rc = r["real_client"]
    print(f"real client idle: p50 {rc['idle']['p50_ms']} ms, p95 {rc['idle']['p95_ms']} ms; "
          f"during attack: {rc['during_attack']['ok']}/{rc['during_attack']['n']} ok, "
          f"p50 {rc['during_attack']['p50_ms']} ms, p95 {rc['during_attack']['p95_ms']} ms, "
          f"statuses {rc['during_attack']['statuses']}")
    print(f"load average {r['machine']['loadavg']}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=1200, help="attack requests (>= 1000)")
    p.add_argument("--concurrency", type=int, default=100, help="attack requests at once")
    p.add_argument("--body-timeout", type=float, default=15.0, help="server.body_timeout, s")
    p.add_argument("--baseline", type=int, default=10, help="real-client requests when idle")
    p.add_argument("--seed", type=int, default=12)
    p.add_argument("--kinds", default="", help="only these attack kinds (comma-separated)")
    p.add_argument("--out", default=str(ROOT / "reports" / "hostile_load.json"))
    args = p.parse_args()
    if not 1 <= args.requests <= 20_000 or not 1 <= args.concurrency <= 1000:
        p.error("--requests 1..20000 and --concurrency 1..1000")
    report = asyncio.run(main_async(args))
    print_table(report)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")
    return 0 if report["server_5xx"] == 0 and report["tracebacks_in_log"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
