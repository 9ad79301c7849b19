"""Store fixtures: a store on SQLite and, where a real PostgreSQL can start, on PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from stream.store import StoreConfig, open_store
from tests.stream.services import Postgres


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    try:
        pytest.importorskip("psycopg")
        pg = Postgres()
    except (RuntimeError, OSError) as exc:
        pytest.skip(f"PostgreSQL cannot start here: {exc}")
    yield pg
    pg.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_config(request, tmp_path) -> StoreConfig:
    if request.param == "sqlite":
        return StoreConfig()
    pg = request.getfixturevalue("postgres")
    return StoreConfig(url=pg.create_db(f"t_{uuid.uuid4().hex[:12]}"))


@pytest.fixture
def store(store_config, tmp_path):
    s = open_store(store_config, tmp_path / "state")
    yield s
    s.close()


def event(i: int, plate: str, *, camera: str = "gate", ts: str | None = None,
          known: dict | None = None) -> dict:
    """A Plate Recognizer Stream event as the pipeline spools it."""
    return {
        "event_id": f"ev-{i}", "camera_id": camera, "filename": f"{camera}_screenshots/x.jpg",
        "timestamp": ts or f"2026-11-27T08:{i // 60 % 60:02d}:{i % 60:02d}.000000Z",
        "processing_time": 10.0, "image_width": 1280, "image_height": 720,
        "results": [{
            "plate": plate, "score": 0.9, "dscore": 0.8,
            "box": {"xmin": 1, "ymin": 2, "xmax": 30, "ymax": 12},
            "region": {"code": "fr", "score": 0.7}, "vehicle": {"type": "Sedan", "score": 0.6,
                                                                 "box": {"xmin": 0, "ymin": 0,
                                                                         "xmax": 50,
                                                                         "ymax": 40}},
            "candidates": [{"plate": plate, "score": 0.9}], "direction": 90,
        }],
        "known_plate": known,
    }


