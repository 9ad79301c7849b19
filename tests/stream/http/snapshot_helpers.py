"""Helpers shared by the HTTP API tests (a plain module: conftest is not importable)."""

from __future__ import annotations

import io
import re
import struct
import zlib

import aiohttp
from PIL import Image

# A US image whose plate the engine reads reliably (label YG9X2G).
CAR = "images/us/0b86cecf-67d1-4fc0-87c9-b36b0ee228bb.jpg"
CAR_PLATE = "yg9x2g"

SNAPSHOT_KEYS = {"processing_time", "results", "filename", "version", "camera_id", "timestamp",
                 "usage"}
FILENAME = re.compile(r"^\d{4}_[A-Za-z0-9]{5}_(.+)$")


def form(car: bytes, **fields) -> aiohttp.FormData:
    f = aiohttp.FormData()
    f.add_field("upload", car, filename="car.jpg", content_type="image/jpeg")
    for name, value in fields.items():
        for v in value if isinstance(value, list) else [value]:
            f.add_field(name, v)
    return f


def check_snapshot(body: dict, name: str = "car.jpg") -> dict:
    assert SNAPSHOT_KEYS <= body.keys()
    assert body["version"] == 1
    assert isinstance(body["processing_time"], float) and body["processing_time"] > 0
    m = FILENAME.match(body["filename"])
    assert m and m.group(1) == name, body["filename"]
    assert set(body["usage"]) == {"calls", "max_calls"} and body["usage"]["calls"] >= 1
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", body["timestamp"])
    plates = [r["plate"] for r in body["results"]]
    assert CAR_PLATE in plates, plates
    return body["results"][plates.index(CAR_PLATE)]


def png_with_size(width: int, height: int) -> bytes:
    """A valid small PNG whose header claims ``width`` x ``height`` (a decompression bomb)."""
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    ihdr = 8 + 8  # signature, then chunk length + type
    data[ihdr:ihdr + 8] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[12:ihdr + 13]))
    data[ihdr + 13:ihdr + 17] = struct.pack(">I", crc)
    return bytes(data)
