"""Fixtures of the HTTP API tests: one real EngineWorker (real models) for the session, and a
factory that serves ``create_app`` on 127.0.0.1 through pytest-aiohttp's test server."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from stream.config import ServerSettings
from stream.engine_worker import EngineWorker
from stream.http.server import create_app
from tests.stream.http.snapshot_helpers import CAR


@pytest.fixture(scope="session")
def worker(recognizer):
    w = EngineWorker(recognizer, max_queue=64, max_batch=8, batch_window_ms=5.0)
    w.start()
    yield w
    w.stop()


@pytest.fixture(scope="session")
def car_jpg(evaldata: Path) -> bytes:
    return (evaldata / CAR).read_bytes()


@pytest.fixture
def make_client(aiohttp_client, worker, tmp_path) -> Callable:
    """``await make_client(token=..., ...)`` -> a TestClient on a real 127.0.0.1 server.

    ``data_dir`` defaults to this test's tmp_path, so usage counters and spools start empty.
    """

    async def make(*, worker_=None, status_provider=None, **settings):
        settings.setdefault("data_dir", str(tmp_path / "data"))
        app = create_app(worker_ or worker, ServerSettings(**settings),
                         status_provider=status_provider)
        return await aiohttp_client(app)

    return make
