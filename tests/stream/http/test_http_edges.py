"""The server's edges (issue 12 §1-2): CORS, the token on every route but ``GET /``,
``upload_url`` and its SSRF rules, aiohttp's own parser errors, Retry-After, text_formats
and region codes."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from engine import EngineConfigError, ReadOptions, parse_regions
from engine.text_formats import compile_text_format, read_with_text_formats
from stream.http import ServerSettings, run_server
from stream.http.admission import Throughput
from stream.http.fetch import UrlPolicy
from tests.stream.http.snapshot_helpers import form

# ---------------------------------------------------------------- CORS and the token

async def test_cors_open_server_allows_every_origin(make_client, car_jpg):
    client = await make_client()
    r = await client.options("/v1/plate-reader/", headers={
        "Origin": "http://a.test", "Access-Control-Request-Method": "POST"})
    assert r.status == 204 and r.headers["Access-Control-Allow-Origin"] == "*"
    assert "Authorization" in r.headers["Access-Control-Allow-Headers"]
    r = await client.post("/v1/plate-reader", data=form(car_jpg, regions="zz-qq"),
                          headers={"Origin": "http://a.test"})
    assert r.status == 400 and r.headers["Access-Control-Allow-Origin"] == "*"  # errors too


async def test_cors_with_a_token_only_for_configured_origins(make_client):
    client = await make_client(token="T")
    r = await client.get("/info/", headers={"Origin": "http://a.test", "Authorization": "Token T"})
    assert r.status == 200 and "Access-Control-Allow-Origin" not in r.headers
    client = await make_client(token="T", cors_origins=["http://ok.test"])
    r = await client.get("/info/", headers={"Origin": "http://ok.test", "Authorization": "Token T"})
    assert r.headers["Access-Control-Allow-Origin"] == "http://ok.test"
    r = await client.get("/info/", headers={"Origin": "http://no.test", "Authorization": "Token T"})
    assert "Access-Control-Allow-Origin" not in r.headers


async def test_token_covers_metrics_unless_public(make_client):
    client = await make_client(token="T")
    assert (await client.get("/metrics")).status == 403
    r = await client.get("/metrics", headers={"Authorization": "Token T"})
    assert r.status == 200 and "platestream_http_requests" in await r.text()
    assert (await client.get("/")).status == 200  # the health check stays open
    client = await make_client(token="T", metrics_public=True)
    assert (await client.get("/metrics")).status == 200


# ---------------------------------------------------------------- upload_url

class _Handler(BaseHTTPRequestHandler):
    routes: dict = {}

    def do_GET(self) -> None:  # noqa: N802
        status, headers, body = self.routes.get(self.path, (404, {}, b""))
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def origin(car_jpg):
    handler = type("H", (_Handler,), {"routes": {
        "/car.jpg": (200, {"Content-Type": "image/jpeg"}, car_jpg),
        "/page": (200, {"Content-Type": "text/html"}, b"<html>"),
        "/r1": (302, {"Location": "/car.jpg"}, b""),
        "/loop": (302, {"Location": "/loop"}, b""),
        "/to-private": (302, {"Location": "http://10.255.255.1/x.jpg"}, b""),
        "/big": (200, {"Content-Type": "image/jpeg"}, b"\xff\xd8\xff" + b"0" * 300_000),
    }})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


async def test_upload_url_fetches_allowed_hosts(make_client, origin):
    client = await make_client(allow_url_hosts=["127.0.0.1"])
    for path in ("/car.jpg", "/r1"):
        r = await client.post("/v1/plate-reader/", data={"upload_url": origin + path})
        assert r.status == 201, await r.text()
        assert (await r.json())["filename"].endswith("car.jpg")


@pytest.mark.parametrize(("url", "allow", "status", "says"), [
    ("{o}/car.jpg", [], 400, "loopback"),                     # loopback refused by default
    ("http://localhost:{p}/car.jpg", [], 400, "loopback"),    # also by name (resolved)
    ("http://[::1]:{p}/car.jpg", [], 400, "loopback"),
    ("http://169.254.169.254/latest/meta-data", [], 400, "link-local"),
    ("{o}/to-private", ["127.0.0.1"], 400, "10.255.255.1"),  # checked after a redirect
    ("{o}/loop", ["127.0.0.1"], 400, "redirects"),
    ("{o}/page", ["127.0.0.1"], 400, "Content-Type"),
    ("{o}/big", ["127.0.0.1"], 413, "0.25 MiB"),
    ("file:///etc/passwd", [], 400, "http"),
    ("ftp://127.0.0.1/x", [], 400, "http"),
])
async def test_upload_url_refusals(make_client, origin, url, allow, status, says):
    port = origin.rsplit(":", 1)[1]
    client = await make_client(allow_url_hosts=allow, max_upload_mb=0.25)
    r = await client.post("/v1/plate-reader/",
                          data={"upload_url": url.format(o=origin, p=port)})
    body = await r.json()
    assert r.status == status, body
    assert says in body.get("detail", body.get("error", "")), body


def test_url_policy_networks_and_names():
    import ipaddress

    p = UrlPolicy(["10.0.0.0/8", "cam.local"])
    ip = ipaddress.ip_address
    assert p.allows("x", ip("10.1.2.3")) and p.allows("cam.local", ip("192.168.1.2"))
    assert not p.allows("x", ip("192.168.1.2")) and not p.allows("x", ip("127.0.0.1"))
    assert not p.allows("x", ip("::ffff:127.0.0.1")) and p.allows("x", ip("8.8.8.8"))


# ---------------------------------------------------------------- aiohttp's parser errors

def test_parser_errors_answer_short_json_and_log_one_line(tmp_path, worker, caplog):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    stop = threading.Event()
    settings = ServerSettings(host="127.0.0.1", port=port, data_dir=str(tmp_path))
    caplog.set_level(logging.DEBUG)
    t = threading.Thread(target=run_server, args=(worker, settings), kwargs={"stop_event": stop})
    t.start()
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                threading.Event().wait(0.1)
        secret = b"ECHO-ME-NOT"
        for raw in (
            b"POST /v1/plate-reader/ HTTP/1.1\r\nHost: x\r\nContent-Length: -5" + secret +
            b"\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + secret + b"A" * 20000 + b"\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + secret + b"\r\n\r\n",
        ):
            with socket.create_connection(("127.0.0.1", port), 5) as c:
                c.sendall(raw)
                c.settimeout(5)
                answer = b""
                while chunk := c.recv(65536):
                    answer += chunk
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.split(b" ")[1] == b"400", answer[:200]
            assert b"application/json" in head and secret not in answer
            assert json.loads(body)["detail"].startswith("Bad request")
    finally:
        stop.set()
        t.join(20)
    lines = [r for r in caplog.records if "malformed request" in r.getMessage()]
    assert len(lines) == 3 and all(r.levelno == logging.INFO for r in lines)
    assert not any(r.exc_info for r in caplog.records), "no traceback logged"


# ---------------------------------------------------------------- Retry-After

def test_retry_after_follows_backlog_and_throughput():
    now = [0.0]
    t = Throughput(window_s=30, clock=lambda: now[0])
    assert t.retry_after(9) == 10  # nothing measured: one a second assumed
    for _ in range(40):  # 4 per second for 10 s
        now[0] += 0.25
        t.record()
    assert t.retry_after(39) == 10 and t.retry_after(0) == 1
    assert t.retry_after(10_000) == 60  # capped


# ---------------------------------------------------------------- text_formats, regions

def test_text_formats_syntax():
    assert compile_text_format("[0-9][0-9][a-z]") == (("N", "N", "L"),)
    assert compile_text_format("^[a-z]?x.$") == (("L", "=x", "A"), ("=x", "A"))
    for bad in ("[0-9]{3}", "", "(ab)", "??", 7):
        with pytest.raises(EngineConfigError, match="text_formats"):
            compile_text_format(bad)
    assert ReadOptions.parse({"text_formats": ["[0-9]"]}).text_formats == ("[0-9]",)
    assert ReadOptions.parse({"mode": "redaction"}).threshold_d < ReadOptions().threshold_d


def test_text_formats_guide_the_read():
    alphabet, pad = "0123456789abcdefghijklmnopqrstuvwxyz_", "_"
    # slots read "o" where a digit is as likely: the pattern decides
    probs = np.full((6, len(alphabet)), 1e-4)
    for i, c in enumerate("ab1"):
        probs[i, alphabet.index(c)] = 0.9
    probs[3, alphabet.index("o")], probs[3, alphabet.index("0")] = 0.5, 0.45
    probs[4:, alphabet.index("_")] = 0.99
    probs /= probs.sum(1, keepdims=True)
    fit = read_with_text_formats(probs, ("[a-z][a-z][0-9][0-9]",), alphabet, pad)
    assert fit is not None and fit.text == "ab10"
    assert read_with_text_formats(probs, ("[0-9]",) * 1, alphabet, pad).score < fit.score


def test_documented_region_codes_are_accepted():
    assert parse_regions(["th-37", "cb", "ae-du", "pe-lim", "br_sc", "TH-10B"]) == (
        "th-37", "kh", "ae-du", "pe-lim", "br-sc", "th-10b")
    with pytest.raises(EngineConfigError, match="zz-qq"):
        parse_regions(["zz-qq"])


_ = asyncio


def test_pixel_and_body_budgets_name_their_limits():
    from stream.http.admission import ByteBudget, PixelBudget
    from stream.http.errors import ApiError

    pixels = PixelBudget(per_image=10_000_000, limit=5)  # at least two decodes of the largest
    assert pixels.limit == 20_000_000
    pixels.take(20_000_000, retry_after=3)
    with pytest.raises(ApiError) as exc:
        pixels.take(1, retry_after=3)
    assert exc.value.status == 429 and exc.value.headers["Retry-After"] == "3"
    assert "the limit is 20 Mpx" in exc.value.detail
    pixels.give(20_000_000)
    pixels.take(1, retry_after=3)
    with pytest.raises(ApiError) as exc:
        pixels.check_size(5000, 2001)
    assert exc.value.status == 413 and "5000x2001" in exc.value.detail
    body = ByteBudget(1 << 20)
    body.take(1 << 20)
    with pytest.raises(ApiError, match="the limit is 1 MiB") as exc:
        body.take(1)
    assert exc.value.status == 429


async def test_pixel_budget_waits_in_line_so_large_images_are_not_starved():
    from stream.http.admission import PixelBudget
    from stream.http.errors import ApiError

    b = PixelBudget(per_image=10, limit=20)
    await b.acquire(15, wait_s=1, retry_after=1)
    big = asyncio.ensure_future(b.acquire(20, wait_s=5, retry_after=1))
    await asyncio.sleep(0.01)
    small = asyncio.ensure_future(b.acquire(2, wait_s=0.2, retry_after=1))
    with pytest.raises(ApiError) as exc:  # behind the large one in line, it times out
        await small
    assert exc.value.status == 429
    with pytest.raises(ApiError):
        b.take(1, retry_after=1)  # no jumping the line either
    b.give(15)
    await asyncio.wait_for(big, 1)
    assert b.used == 20
    b.give(20)
    cancelled = asyncio.ensure_future(b.acquire(5, wait_s=5, retry_after=1))
    await asyncio.sleep(0)
    await asyncio.wait_for(cancelled, 1)
    assert b.used == 5
    b.give(5)
    assert b.used == 0 and not b._waiters
