"""The web console's pages, login and live stream, served by the real app on 127.0.0.1 over a
real SQLite event store (the browser tests drive a real `platestream run`)."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time

import cv2
import pytest

from stream.console.auth import COOKIE, Sessions
from stream.http import ServerSettings, create_app
from stream.known_plates import KnownListConfig, KnownPlates
from stream.store import StoreConfig, open_store
from tests.stream.store.conftest import event

TOKEN = "console-test-token-7f3a"
STATUS = {
    "cameras": {"gate": {"state": "streaming", "fps": 12.5, "frames_analysed": 40,
                         "frames_dropped": 3, "events": 2, "last_error": "decoder hiccup"}},
    "outputs": {"store": {"type": "store", "pending": 0, "failed": 0, "delivered": 2,
                          "last_error": None},
                "gate-hook": {"type": "webhook", "pending": 4, "failed": 1, "delivered": 0,
                              "last_error": "DeliveryError: connection refused"}},
}


@pytest.fixture
def store(tmp_path):
    s = open_store(StoreConfig(), tmp_path / "state")
    yield s
    s.close()


@pytest.fixture(scope="session")
def jpeg(evaldata) -> bytes:
    img = cv2.imread(str(sorted((evaldata / "images" / "eu").glob("*.jpg"))[0]))
    return cv2.imencode(".jpg", img[:40, :50])[1].tobytes()


@pytest.fixture
def make_console(aiohttp_client, api_worker, tmp_path, store, jpeg):
    async def make(token: str | None = None):
        known = KnownPlates.from_config({"staff": KnownListConfig("staff", plates=["cfg111"])},
                                        tmp_path, backend=store)
        staff = {"list": "staff", "name": "Ann", "plate": "ab123cd", "distance": 1}
        for i in range(60):  # more than a page (50)
            plate = "ab123ce" if i % 20 == 0 else f"zz{i:03d}yy"
            store.put(event(i, plate, known=staff if plate == "ab123ce" else None),
                      images={"vehicle": jpeg, "plate": jpeg})
        app = create_app(api_worker, ServerSettings(token=token, data_dir=str(tmp_path / "d")),
                         status_provider=lambda: STATUS, store=store, known=known)
        return await aiohttp_client(app)

    return make


def csrf_of(html: str) -> str:
    return re.search(r'<meta name="csrf-token" content="([^"]*)"', html).group(1)


async def test_open_console_pages_and_one_warning(make_console, caplog):
    with caplog.at_level(logging.WARNING, logger="stream.console"):
        client = await make_console()
    warnings = [r for r in caplog.records if r.name == "stream.console"]
    assert len(warnings) == 1 and "open" in warnings[0].getMessage()

    html = await (await client.get("/ui/")).text()
    assert 'data-camera="gate"' in html and "decoder hiccup" in html and "AB123CE" in html

    r = await client.get("/ui/events")
    html = await r.text()
    assert r.status == 200 and html.count('<tr data-href="/ui/events/') == 50
    assert 'id="older"' in html  # 60 events: a second page
    older = re.search(r'href="(/ui/events\?cursor=[^"]+)" id="older"', html).group(1)
    html2 = await (await client.get(older.replace("&amp;", "&"))).text()
    assert html2.count('<tr data-href="/ui/events/') == 10

    # fuzzy search (O for 0, one edit) and the known-plate badge
    html = await (await client.get("/ui/events", params={"plate": "AB12JCE"})).text()
    assert html.count('<tr data-href=') == 3 and '<span class="badge known"' in html

    # filters that do not parse: the page says which, with status 400
    r = await client.get("/ui/events", params={"since": "yesterday"})
    assert r.status == 400
    assert re.search(r'id="filter-error">since: ', await r.text())

    r = await client.get("/ui/events/ev-20")
    html = await r.text()
    assert r.status == 200 and "AB123CE" in html and '<rect class="plate-box" x="1" y="2"' in html
    assert (await client.get("/ui/events/no-such-event")).status == 404

    html = await (await client.get("/ui/known")).text()
    assert "CFG111" in html and "config" in html
    html = await (await client.get("/ui/health")).text()
    assert "gate-hook" in html and "connection refused" in html
    r = await client.get("/ui/static/console.css")
    assert r.status == 200 and "text/css" in r.headers["Content-Type"]

    # open, but not to other sites' pages: a cross-site write is refused
    body = {"list": "staff", "plate": "xy987zz"}
    r = await client.post("/api/v1/known-plates", json=body,
                          headers={"Origin": "http://evil.example"})
    assert r.status == 403
    host = f"{client.server.host}:{client.server.port}"
    r = await client.post("/api/v1/known-plates", json=body,
                          headers={"Origin": f"http://{host}"})
    assert r.status == 201


async def test_login_session_cookie_and_csrf(make_console):
    client = await make_console(token=TOKEN)
    r = await client.get("/ui/events?plate=ab", allow_redirects=False)
    assert r.status == 303 and r.headers["Location"].startswith("/ui/login?next=")
    assert (await client.get("/ui/live")).status == 401
    assert (await client.get("/api/v1/events")).status == 403  # no session, no token

    r = await client.post("/ui/login", data={"token": "wrong", "next": "/ui/"},
                          allow_redirects=False)
    assert r.status == 403 and "Wrong token." in await r.text() and COOKIE not in r.cookies

    r = await client.post("/ui/login", data={"token": TOKEN, "next": "//evil.example/"},
                          allow_redirects=False)
    assert r.headers["Location"] == "/ui/"  # never a redirect off this server
    set_cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=Strict" in set_cookie
    assert TOKEN not in set_cookie
    cookie = r.cookies[COOKIE].value
    client.session.cookie_jar.clear()  # sent by hand below, so each request says what it has
    h = {"Cookie": f"{COOKIE}={cookie}"}

    for path in ("/ui/", "/ui/events", "/ui/events/ev-0", "/ui/known", "/ui/health"):
        r = await client.get(path, headers=h)
        assert r.status == 200, path
        assert TOKEN not in await r.text()
    csrf = csrf_of(await (await client.get("/ui/known", headers=h)).text())
    assert csrf

    # the session opens the API for the browser; writes need the CSRF header from the page
    assert (await client.get("/api/v1/events", headers=h)).status == 200
    body = {"list": "staff", "plate": "xy987zz", "name": "Bob"}
    assert (await client.post("/api/v1/known-plates", json=body, headers=h)).status == 403
    bad = {**h, "X-CSRF-Token": csrf, "Origin": "http://evil.example"}
    assert (await client.post("/api/v1/known-plates", json=body, headers=bad)).status == 403
    ok = {**h, "X-CSRF-Token": csrf}
    r = await client.post("/api/v1/known-plates", json=body, headers=ok)
    assert r.status == 201, await r.text()
    assert (await client.delete("/api/v1/known-plates/staff/xy987zz", headers=h)).status == 403
    assert (await client.delete("/api/v1/known-plates/staff/xy987zz", headers=ok)).status == 204
    # a signed session of another token is not a session here
    other = Sessions("another-token").issue()
    r = await client.get("/ui/", headers={"Cookie": f"{COOKIE}={other}"}, allow_redirects=False)
    assert r.status == 303

    # log out: needs the page's CSRF value; afterwards the cookie is dead
    r = await client.post("/ui/logout", data={"csrf": "nope"}, headers=h, allow_redirects=False)
    assert r.status == 403
    r = await client.post("/ui/logout", data={"csrf": csrf}, headers=h, allow_redirects=False)
    assert r.status == 303
    assert (await client.get("/ui/", headers=h, allow_redirects=False)).status == 303


async def test_live_stream_sends_status_then_new_plates(make_console, store, jpeg):
    client = await make_console()
    r = await client.get("/ui/live")
    assert r.headers["Content-Type"] == "text/event-stream"

    async def next_message(kind: str) -> dict:
        buf = ""
        while True:
            line = (await asyncio.wait_for(r.content.readline(), 5)).decode()
            buf += line
            m = re.search(rf"event: {kind}\ndata: (.*)\n", buf)
            if m:
                return json.loads(m.group(1))

    status = await next_message("status")
    assert status["cameras"]["gate"]["fps"] == 12.5
    assert status["outputs"]["gate-hook"]["failed"] == 1
    t0 = time.monotonic()
    await asyncio.to_thread(store.put, event(500, "nw500ev", camera="gate"),
                            images={"plate": jpeg})
    plate = await next_message("plate")
    assert plate["plate"] == "nw500ev" and plate["images"]["plate"].endswith("/plate.jpg")
    assert time.monotonic() - t0 < 3
    r.close()


def test_sessions_reject_tampered_expired_and_revoked():
    s = Sessions("tok")
    cookie = s.issue()
    assert s.nonce(cookie)
    exp, nonce, sig = cookie.split(".")
    assert s.nonce(f"{int(exp) + 1000}.{nonce}.{sig}") is None  # longer life: bad signature
    assert s.nonce(f"{exp}.{nonce}.{sig[:-2]}xx") is None
    assert s.nonce("garbage") is None and s.nonce(None) is None
    assert s.nonce(s.issue(now=time.time() - 8 * 24 * 3600)) is None  # expired
    s.revoke(cookie)
    assert s.nonce(cookie) is None
    assert s.token_ok("tok") and not s.token_ok("to") and not s.token_ok("")


async def test_open_live_streams_do_not_hold_up_shutdown(api_worker, tmp_path, store):
    import aiohttp
    from aiohttp import web

    app = create_app(api_worker, ServerSettings(token=None, data_dir=str(tmp_path / "d")),
                     status_provider=lambda: STATUS, store=store)
    runner = web.AppRunner(app, shutdown_timeout=30.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    async with aiohttp.ClientSession() as session:
        r = await session.get(f"http://127.0.0.1:{port}/ui/live")
        assert (await asyncio.wait_for(r.content.readline(), 5)).startswith(b"retry:")
        t0 = time.monotonic()
        await runner.cleanup()
        assert time.monotonic() - t0 < 5  # not the 30 s shutdown timeout
        r.close()


def test_templates_and_static_files_ship_in_the_wheel():
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"]["stream.console"]
    pkg = root / "stream" / "console"
    shipped = {p for pat in patterns for p in pkg.glob(pat)}
    files = {p for d in ("templates", "static") for p in (pkg / d).rglob("*") if p.is_file()}
    assert files and files <= shipped, sorted(str(p) for p in files - shipped)
