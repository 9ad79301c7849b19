"""Every error the API answers, as JSON with the status code and body shape clients expect."""

from __future__ import annotations

import asyncio
import base64
import json

import aiohttp
import pytest

from stream.engine_worker import EngineWorker
from stream.http.routes import STATE
from tests.stream.http.snapshot_helpers import form, png_with_size


async def expect(r: aiohttp.ClientResponse, status: int, key: str = "detail",
                 says: str = "") -> dict:
    assert r.status == status, await r.text()
    assert r.content_type == "application/json"
    body = await r.json()
    assert isinstance(body.get(key), str) and body[key], body
    assert says.lower() in body[key].lower(), body
    return body


@pytest.mark.parametrize(("headers", "says"), [
    ({}, "not provided"),
    ({"Authorization": "Token wrong"}, "invalid token"),
    ({"Authorization": "Tokenright"}, "invalid token"),
    ({"Authorization": "Basic cmlnaHQ6"}, "invalid token"),
])
async def test_403_without_the_right_token(make_client, car_jpg, headers, says):
    client = await make_client(token="right")
    r = await client.post("/v1/plate-reader/", data=form(car_jpg), headers=headers)
    body = await expect(r, 403, says=says)
    assert set(body) == {"detail"}
    for path in ("/v1/statistics/", "/info/"):
        await expect(await client.get(path, headers=headers), 403)
    r = await client.post("/v1/plate-reader/", data=form(car_jpg),
                          headers={"Authorization": "Token right"})
    assert r.status == 201


async def test_413_from_content_length_before_the_body_is_read(make_client):
    client = await make_client(max_upload_mb=1)
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    # Announce 50 MB and send nothing: the answer must come from the headers alone.
    writer.write(b"POST /v1/plate-reader/ HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/"
                 b"form-data; boundary=b\r\nContent-Length: 50000000\r\n\r\n")
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
    assert head.startswith(b"HTTP/1.1 413")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length")))
    body = json.loads(await reader.readexactly(length))
    assert set(body) == {"error"}
    writer.close()


@pytest.mark.parametrize(("headers", "answer"), [
    (b"Authorization: Token X\r\nContent-Length: 1000\r\n", b"HTTP/1.1 100 Continue"),
    (b"Authorization: Token Y\r\nContent-Length: 1000\r\n", b"HTTP/1.1 403"),
    (b"Authorization: Token X\r\nContent-Length: 9000000\r\n", b"HTTP/1.1 413"),
])
async def test_expect_100_continue_is_refused_before_the_body(make_client, headers, answer):
    client = await make_client(token="X", max_upload_mb=1)
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    writer.write(b"POST /v1/plate-reader/ HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                 b"Content-Type: multipart/form-data; boundary=b\r\n" + headers + b"\r\n")
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
    assert head.startswith(answer), head
    writer.close()


async def test_413_for_a_chunked_body_over_the_limit(make_client):
    client = await make_client(max_upload_mb=1)

    async def chunks():
        for _ in range(40):
            yield b"\xff" * 65536  # 2.5 MiB, no Content-Length

    f = aiohttp.FormData()
    f.add_field("upload", chunks(), filename="big.jpg", content_type="image/jpeg")
    r = await client.post("/v1/plate-reader/", data=f)
    await expect(r, 413, key="error", says="too large")


async def test_413_for_an_image_over_the_upload_limit(make_client):
    client = await make_client(max_upload_mb=1)
    f = aiohttp.FormData()
    f.add_field("upload", b"\xff\xd8\xff" + bytes(1_200_000), filename="big.jpg")
    await expect(await client.post("/v1/plate-reader/", data=f), 413, key="error")
    doc = {"upload": base64.b64encode(bytes(1_200_000)).decode()}
    await expect(await client.post("/v1/plate-reader/", json=doc), 413, key="error")


BAD_UPLOADS = [
    pytest.param({"regions": "us"}, "upload: missing", id="missing"),
    pytest.param({"upload": "!!!not base64!!!"}, "not valid base64", id="bad-base64"),
    pytest.param({"upload": base64.b64encode(b"hello, not an image").decode()}, "not an image",
                 id="base64-of-text"),
    pytest.param({"upload": ""}, "empty", id="empty"),
    pytest.param({"upload_url": "http://example.com/car.jpg"}, "upload_url", id="upload-url"),
]


@pytest.mark.parametrize(("fields", "says"), BAD_UPLOADS)
async def test_400_for_a_bad_upload_field(make_client, fields, says):
    client = await make_client()
    await expect(await client.post("/v1/plate-reader/", data=fields), 400, says=says)
    await expect(await client.post("/v1/plate-reader/", json=fields), 400, says=says)


async def test_400_for_bad_image_files(make_client, car_jpg):
    client = await make_client()
    for data, says in [
        (b"GIF89a definitely not", "upload:"),
        (b"plain text file", "not an image"),
        (car_jpg[: len(car_jpg) // 3], "truncated"),
        (png_with_size(13_000, 1_000), "too large"),
    ]:
        f = aiohttp.FormData()
        f.add_field("upload", data, filename="x.jpg", content_type="image/jpeg")
        await expect(await client.post("/v1/plate-reader/", data=f), 400, says=says)


async def test_413_names_the_pixel_limit_before_decoding(make_client):
    client = await make_client(max_pixels=4_000_000)
    for w, h in ((100_000, 100_000), (7_746, 7_746), (2_001, 2_000)):
        f = aiohttp.FormData()
        f.add_field("upload", png_with_size(w, h), filename="x.png", content_type="image/png")
        body = await expect(await client.post("/v1/plate-reader/", data=f), 413, key="error")
        assert "the limit is 4.0 Mpx (--max-pixels)" in body["error"], body
        assert f"{w}x{h}" in body["error"] or w == 100_000  # Pillow refuses to open that one


async def test_413_names_the_configured_upload_limit(make_client, car_jpg):
    client = await make_client(max_upload_mb=0.05)
    body = await expect(await client.post("/v1/plate-reader/", data=form(car_jpg)), 413,
                        key="error")
    assert "the upload limit is 0.05 MiB" in body["error"], body


@pytest.mark.parametrize(("fields", "says"), [
    ({"regions": "xx"}, "regions"),
    ({"regions": "us-zz"}, "regions"),
    ({"timestamp": "yesterday"}, "timestamp"),
    ({"mmc": "maybe"}, "mmc"),
    ({"config": "{not json"}, "config"),
    ({"config": '{"mode": "turbo"}'}, "config.mode"),
    ({"config": '{"text_formats": ["[0-9]{3}"]}'}, "config.text_formats"),
    ({"config": '{"threshold_d": 7}'}, "config.threshold_d"),
])
async def test_400_names_the_bad_field(make_client, car_jpg, fields, says):
    client = await make_client()
    await expect(await client.post("/v1/plate-reader/", data=form(car_jpg, **fields)), 400,
                 says=says)


async def test_415_and_400_for_bodies_that_are_not_forms(make_client, car_jpg):
    client = await make_client()
    r = await client.post("/v1/plate-reader/", data=car_jpg, headers={"Content-Type": "image/jpeg"})
    await expect(r, 415, says="unsupported media type")
    r = await client.post("/v1/plate-reader/", data=b"[1, 2]",
                          headers={"Content-Type": "application/json"})
    await expect(r, 400, says="expected an object")
    r = await client.post("/v1/plate-reader/", data=b"--x\r\nbroken",
                          headers={"Content-Type": "multipart/form-data; boundary=x"})
    await expect(r, 400, says="multipart")


async def test_405_and_404(make_client):
    client = await make_client()
    body = await expect(await client.get("/v1/plate-reader/"), 405, says="not allowed")
    assert set(body) == {"detail"}
    r = await client.put("/v1/plate-reader")
    await expect(r, 405)
    assert r.headers["Allow"] == "OPTIONS,POST"  # OPTIONS: CORS preflight
    await expect(await client.post("/info/"), 405)
    await expect(await client.get("/v2/nothing"), 404)


async def test_429_from_the_rate_limit(make_client, car_jpg):
    client = await make_client(token="X", rate_limit=0.001)  # one lookup, then 1000 s to refill
    auth = {"Authorization": "Token X"}
    assert (await client.post("/v1/plate-reader/", data=form(car_jpg), headers=auth)).status == 201
    r = await client.post("/v1/plate-reader/", data=form(car_jpg), headers=auth)
    body = await expect(r, 429, says="throttled")
    assert body["status_code"] == 429
    assert int(r.headers["Retry-After"]) >= 1
    await expect(await client.post("/v1/plate-reader/", headers={"Authorization": "Token Y"}),
                 403)  # the token is checked before the rate limit


async def test_429_when_the_inference_queue_is_full(make_client, recognizer, car_jpg):
    # A worker that is not started never drains its one-slot queue.
    stalled = EngineWorker(recognizer, max_queue=1)
    client = await make_client(worker_=stalled)
    r1 = asyncio.ensure_future(client.post("/v1/plate-reader/", data=form(car_jpg)))
    while stalled.stats()["queued"] == 0:
        await asyncio.sleep(0.01)
    r = await client.post("/v1/plate-reader/", data=form(car_jpg))
    body = await expect(r, 429, says="queue is full")
    # derived from the backlog and recent throughput (none here: one a second assumed)
    assert body["status_code"] == 429 and int(r.headers["Retry-After"]) >= 2
    stalled.start()  # now the first request is answered
    assert (await r1).status == 201
    stalled.stop()


async def test_429_when_too_many_requests_are_in_flight(make_client, recognizer, car_jpg):
    # Requests received and waiting for inference count; with queue_size=1 and max_batch=1
    # at most 1 + 2 * 1 are admitted, the next gets 429 with a derived Retry-After.
    stalled = EngineWorker(recognizer, max_queue=10, max_batch=1)
    client = await make_client(worker_=stalled, queue_size=1)
    waiting = [asyncio.ensure_future(client.post("/v1/plate-reader/", data=form(car_jpg)))
               for _ in range(3)]
    while client.app[STATE].in_flight < 3:
        await asyncio.sleep(0.01)
    r = await client.post("/v1/plate-reader/", data=form(car_jpg))
    body = await expect(r, 429, says="busy")
    assert body["status_code"] == 429 and int(r.headers["Retry-After"]) >= 2
    stalled.start()
    assert [(await w).status for w in waiting] == [201] * 3
    stalled.stop()


async def _stalled_uploads(port: int, n: int) -> list[tuple[asyncio.StreamReader,
                                                           asyncio.StreamWriter]]:
    conns = []
    for _ in range(n):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /v1/plate-reader/ HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/"
                     b"form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n--b\r\n")
        await writer.drain()
        conns.append((reader, writer))
    return conns


async def test_clients_still_sending_hold_no_engine_slot(make_client, car_jpg):
    # queue_size=1 admits 1 + 2 * 8 requests to the engine; 30 stalled uploads hold none.
    client = await make_client(queue_size=1)
    stalled = await _stalled_uploads(client.port, 30)
    while client.app[STATE].receiving < 30:
        await asyncio.sleep(0.01)
    r = await client.post("/v1/plate-reader/", data=form(car_jpg))
    assert r.status == 201, await r.text()
    assert client.app[STATE].in_flight == 0
    for _, writer in stalled:
        writer.close()


async def test_408_when_the_body_does_not_arrive_in_time(make_client):
    client = await make_client(body_timeout=0.5)
    [(reader, writer)] = await _stalled_uploads(client.port, 1)
    answer = await asyncio.wait_for(reader.read(4096), 10)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408") and b"application/json" in head
    assert json.loads(body)["detail"].startswith("Timed out reading the request body")
    writer.close()


async def test_unknown_config_keys_are_ignored_listed_and_logged_once(make_client, car_jpg,
                                                                      caplog):
    """Plate Recognizer's own clients send keys we do not know ({"mmc": true, "blur": true})."""
    client = await make_client()
    caplog.set_level("INFO", logger="stream.http.routes")
    for _ in range(2):
        r = await client.post("/v1/plate-reader/", data=form(
            car_jpg, config='{"mmc": true, "blur": true, "treshold_d": 0.5, "mode": "fast"}'))
        assert r.status == 201, await r.text()
        assert r.headers["X-Platestream-Ignored-Config"] == "mmc, blur, treshold_d"
    logged = [m for m in caplog.messages if "ignoring config key" in m]
    assert len(logged) == 3 and any("'blur'" in m for m in logged)
    r = await client.post("/v1/plate-reader/", data=form(car_jpg, config='{"mode": "fast"}'))
    assert r.status == 201 and "X-Platestream-Ignored-Config" not in r.headers
