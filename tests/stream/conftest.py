"""Stream fixtures: the sample videos, a real RTSP server, a real webhook receiver.

Tests marked ``@pytest.mark.slow`` are skipped unless PLATESTREAM_SLOW=1.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from tests.stream.helpers import free_port
from tests.stream.services import Mosquitto

HERE = Path(__file__).resolve().parent
SYSTEM_PYTHON = "/usr/bin/python3"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("PLATESTREAM_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow soak test: set PLATESTREAM_SLOW=1 to run it")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def video_labels(evaldata: Path) -> dict[str, dict]:
    with open(evaldata / "videos.jsonl") as f:
        return {Path(v["video"]).name: v for v in map(json.loads, f)}


class RtspServer:
    """The GStreamer RTSP server as a subprocess; ``kill()`` and ``start()`` again."""

    def __init__(self, video: Path, port: int) -> None:
        self.video, self.port = video, port
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"rtsp://user:secret@127.0.0.1:{self.port}/stream"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [SYSTEM_PYTHON, str(HERE / "rtsp_server.py"), str(self.video), str(self.port)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        line = self.proc.stdout.readline().strip() if self.proc.stdout else ""
        if line != "READY":
            self.kill()
            pytest.fail(f"RTSP server did not start: {line!r}")

    def pause(self) -> None:
        """SIGSTOP: the connection stays open but no data flows (a stalled camera)."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
def rtsp_server(evaldata: Path) -> Iterator[RtspServer]:
    if not os.path.exists(SYSTEM_PYTHON):
        pytest.skip("GStreamer RTSP server needs Debian's /usr/bin/python3 with gi")
    srv = RtspServer(evaldata / "videos" / "license_plate.mp4", free_port())
    srv.start()
    try:
        yield srv
    finally:
        srv.kill()


class Receiver:
    """A real aiohttp webhook receiver on 127.0.0.1 that can be started late (down, then up)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.received: list[dict] = []
        self.uploads: list[bytes | None] = []
        self.headers: list[dict[str, str]] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="test:receiver",
                                        daemon=True)
        self._thread.start()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def _handle(self, request: web.Request) -> web.Response:
        self.headers.append(dict(request.headers))
        if request.content_type == "multipart/form-data":
            form = await request.post()
            self.received.append(json.loads(form["json"]))
            up = form.get("upload")
            self.uploads.append(up.file.read() if up is not None else None)
        else:
            self.received.append(await request.json())
            self.uploads.append(None)
        return web.Response(text="ok")

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def up(self) -> None:
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)

    def down(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)

    def close(self) -> None:
        self.down()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(free_port())
    try:
        yield r
    finally:
        r.close()


@pytest.fixture(scope="session")
def engine_worker(recognizer):
    from stream.engine_worker import EngineWorker

    w = EngineWorker(recognizer)
    w.start()
    yield w
    w.stop()


@pytest.fixture(scope="session")
def api_worker(recognizer):
    """A small engine worker for in-process API and console apps (store and console tests)."""
    from stream.engine_worker import EngineWorker

    w = EngineWorker(recognizer, max_queue=8, max_batch=2)
    w.start()
    yield w
    w.stop()


@pytest.fixture
def broker() -> Iterator[Mosquitto]:
    """A real mosquitto on a free loopback port (skips where it cannot start); test_hub.py
    and test_hub_tls.py define their own (persistence, TLS)."""
    try:
        b = Mosquitto()
        b.start()
    except (RuntimeError, OSError) as exc:
        pytest.skip(f"mosquitto cannot start here: {exc}")
    yield b
    b.close()


@pytest.fixture(scope="session")
def openvino_worker(models_dir, tmp_path_factory):
    """An engine worker on OpenVINO (engine.backend: openvino, precision auto)."""
    pytest.importorskip("openvino")
    from engine import Recognizer
    from stream.engine_worker import EngineWorker

    rec = Recognizer.from_models_dir(models_dir, backend="openvino", threads=1,
                                     int8_cache=tmp_path_factory.mktemp("models") / "int8")
    w = EngineWorker(rec)
    w.start()
    yield w
    w.stop()
