"""DeliveryWorker + WebhookSender against a real aiohttp receiver on 127.0.0.1."""

import asyncio
import json
import socket
import threading
import time

import pytest
from aiohttp import web

from stream.delivery import DeliveryWorker, Spool, WebhookSender, stop_workers


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver:
    """A webhook receiver in its own thread; ``fail_first`` answers 503 that many times."""

    def __init__(self, port: int, fail_first: int = 0) -> None:
        self.port = port
        self.fail_first = fail_first
        self.received: list[dict] = []
        self.uploads: list[bytes] = []
        self.headers: list[dict] = []
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    async def _handle(self, request: web.Request) -> web.Response:
        if self.fail_first > 0:
            self.fail_first -= 1
            return web.Response(status=503)
        self.headers.append(dict(request.headers))
        if request.content_type == "multipart/form-data":
            form = await request.post()
            self.received.append(json.loads(form["json"]))
            if "upload" in form:
                self.uploads.append(form["upload"].file.read())
        else:
            self.received.append(await request.json())
        return web.Response(status=202)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/", self._handle)
        self._runner = web.AppRunner(app)
        self._loop.run_until_complete(self._runner.setup())
        self._loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port).start())
        self._started.set()
        self._loop.run_forever()

    def __enter__(self):
        self._thread.start()
        assert self._started.wait(10)
        return self

    def __exit__(self, *exc):
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def _wait(cond, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("multipart", [False, True])
def test_delivers_json_and_multipart(tmp_path, multipart):
    port = _free_port()
    spool = Spool(tmp_path / "s.db")
    payload = {"hook": {"id": 1}, "data": {"plate": "abc"}}
    spool.put(["hook"], "ev1", payload, b"\xff\xd8jpeg", "a.jpg")
    sender = WebhookSender(f"http://127.0.0.1:{port}/", headers={"Authorization": "Token t"},
                           multipart=multipart)
    worker = DeliveryWorker(spool, "hook", sender, backoff_initial=0.05, backoff_max=0.2)
    with Receiver(port) as rx:
        worker.start()
        assert _wait(lambda: rx.received)
        stop_workers([worker], None)  # also closes the sender
    assert rx.received == [{"hook": {"id": 1}, "data": {"plate": "abc"}}]
    assert rx.headers[0]["Authorization"] == "Token t"
    assert rx.uploads == ([b"\xff\xd8jpeg"] if multipart else [])
    assert spool.counts("hook") == {"pending": 0, "failed": 0, "delivered": 1}


def test_receiver_down_then_up_loses_nothing_and_keeps_order(tmp_path):
    port = _free_port()
    spool = Spool(tmp_path / "s.db")
    worker = DeliveryWorker(spool, "hook", WebhookSender(f"http://127.0.0.1:{port}/", timeout=2),
                            backoff_initial=0.05, backoff_max=0.3)
    worker.start()
    for i in range(20):
        spool.put(["hook"], f"ev{i}", {"i": i})
    assert _wait(lambda: worker.stats()["failed_attempts"] >= 2)  # nobody listening yet
    with Receiver(port, fail_first=3) as rx:  # up, but answers 503 three times first
        assert _wait(lambda: len(rx.received) == 20)
        stop_workers([worker], None)  # also closes the sender
    assert [p["i"] for p in rx.received] == list(range(20))
    assert spool.counts("hook")["pending"] == 0


def test_gives_up_after_max_attempts(tmp_path):
    port = _free_port()
    spool = Spool(tmp_path / "s.db")
    spool.put(["hook"], "ev1", {"i": 1})
    worker = DeliveryWorker(spool, "hook", WebhookSender(f"http://127.0.0.1:{port}/", timeout=1),
                            backoff_initial=0.01, backoff_max=0.02, max_attempts=3)
    worker.start()
    assert _wait(lambda: spool.counts("hook")["failed"] == 1)
    stop_workers([worker], None)  # also closes the sender
    stats = worker.stats()
    assert stats["failed_attempts"] == 3 and "127.0.0.1" in stats["last_error"]
