"""POST /v1/plate-reader/ on a real server with the real engine: every way clients send an
image, the Snapshot response shape, and the SDK extras (usage, info, statistics)."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess

import aiohttp
import pytest

from stream.http.usage import MAX_CALLS
from tests.stream.http.snapshot_helpers import check_snapshot, form


async def test_multipart_upload_returns_the_snapshot_shape(make_client, car_jpg):
    client = await make_client()
    r = await client.post("/v1/plate-reader/", data=form(car_jpg, camera_id="gate-1"))
    assert r.status == 201
    body = await r.json()
    read = check_snapshot(body)
    assert body["camera_id"] == "gate-1"
    assert {"box", "plate", "region", "score", "candidates", "dscore", "vehicle"} <= read.keys()
    assert "model_make" not in read


async def test_no_trailing_slash_answers_without_redirect(make_client, car_jpg):
    client = await make_client()
    r = await client.post("/v1/plate-reader", data=form(car_jpg), allow_redirects=False)
    assert r.status == 201 and not r.history
    check_snapshot(await r.json())


@pytest.mark.parametrize("prefix", ["", "data:image/jpeg;base64,"])
async def test_base64_in_a_multipart_text_field(make_client, car_jpg, prefix):
    client = await make_client()
    f = aiohttp.FormData()
    f.add_field("upload", prefix + base64.b64encode(car_jpg).decode())
    f.add_field("regions", "us")
    r = await client.post("/v1/plate-reader/", data=f)
    assert r.status == 201, await r.text()
    assert check_snapshot(await r.json(), "upload.jpg")["region"]["code"] == "us"


async def test_base64_in_an_urlencoded_body(make_client, car_jpg):
    client = await make_client()
    data = {"upload": base64.b64encode(car_jpg).decode(), "regions": "us-ca", "mmc": "False"}
    r = await client.post("/v1/plate-reader/", data=data)  # application/x-www-form-urlencoded
    assert r.status == 201, await r.text()
    assert check_snapshot(await r.json(), "upload.jpg")["region"]["code"] == "us-ca"


async def test_json_body_with_every_field(make_client, car_jpg):
    client = await make_client()
    doc = {
        "upload": "data:image/jpeg;base64," + base64.b64encode(car_jpg).decode(),
        "regions": ["fr", "us-ny"], "camera_id": "cam-7", "timestamp": "2024-01-31T12:00:00Z",
        "mmc": True, "config": {"threshold_d": 0.2, "mode": "normal"},
    }
    r = await client.post("/v1/plate-reader/", json=doc)
    assert r.status == 201, await r.text()
    body = await r.json()
    read = check_snapshot(body, "upload.jpg")
    assert body["camera_id"] == "cam-7"
    assert body["timestamp"] == "2024-01-31T12:00:00.000000Z"
    assert read["region"]["code"] == "us-ny"
    assert {"model_make", "color", "orientation"} <= read.keys()


async def test_repeated_regions_pick_the_matching_state(make_client, car_jpg):
    client = await make_client()
    r = await client.post("/v1/plate-reader/", data=form(car_jpg, regions=["fr", "it", "us-ca"]))
    assert r.status == 201
    assert check_snapshot(await r.json())["region"]["code"] == "us-ca"


@pytest.mark.parametrize(("value", "with_mmc"),
                         [("true", True), ("True", True), ("false", False), ("False", False)])
async def test_mmc_spellings(make_client, car_jpg, value, with_mmc):
    client = await make_client()
    r = await client.post("/v1/plate-reader/", data=form(car_jpg, mmc=value))
    assert r.status == 201
    read = check_snapshot(await r.json())
    assert ("model_make" in read) is with_mmc
    assert ("color" in read) is with_mmc and ("orientation" in read) is with_mmc


async def test_config_is_applied(make_client, car_jpg):
    client = await make_client()
    # A US plate with regions=fr and region=strict is filtered out by the engine.
    r = await client.post("/v1/plate-reader/", data=form(
        car_jpg, regions="fr", config=json.dumps({"region": "strict"})))
    assert r.status == 201
    assert (await r.json())["results"] == []
    r = await client.post("/v1/plate-reader/", data=form(
        car_jpg, config=json.dumps({"mode": "fast"})))
    read = check_snapshot(await r.json())
    assert len(read["candidates"]) == 1


async def test_the_seed_curl_command(make_client, car_jpg, tmp_path):
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    client = await make_client(token="X")
    (tmp_path / "car.jpg").write_bytes(car_jpg)
    url = f"http://localhost:{client.port}/v1/plate-reader/"
    cmd = [curl, "-sS", "-F", "upload=@car.jpg", "-F", "regions=us-ca", "-H",
           "Authorization: Token X", url, "-w", "\n%{http_code}"]
    proc = await _run(cmd, tmp_path)
    body, _, code = proc.rpartition("\n")
    assert code == "201", proc
    assert check_snapshot(json.loads(body))["region"]["code"] == "us-ca"


async def _run(cmd: list[str], cwd) -> str:
    import asyncio

    def run() -> str:
        return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=60,
                              check=True).stdout

    return await asyncio.to_thread(run)  # the server runs on this event loop


async def test_health_check(make_client):
    client = await make_client(token="X")
    r = await client.get("/")
    assert r.status == 200
    assert (await r.json())["status"] == "ok"


async def test_usage_and_statistics_count_and_persist(make_client, car_jpg):
    client = await make_client(token="X")
    auth = {"Authorization": "Token X"}
    calls = []
    for _ in range(2):
        r = await client.post("/v1/plate-reader/", data=form(car_jpg), headers=auth)
        calls.append((await r.json())["usage"]["calls"])
    assert calls == [1, 2]
    r = await client.get("/v1/statistics/", headers=auth)
    stats = await r.json()
    # total_calls is the period's allowance (clients compute total_calls - usage.calls)
    assert stats["usage"]["calls"] == 2 and stats["total_calls"] == MAX_CALLS
    assert set(stats["usage"]) == {"month", "calls", "year", "resets_on"}
    await client.close()  # flushes the counter

    client = await make_client(token="X")  # same data_dir: a restart
    stats = await (await client.get("/v1/statistics", headers=auth)).json()
    assert stats["usage"]["calls"] == 2 and stats["total_calls"] == MAX_CALLS
    r = await client.post("/v1/plate-reader/", data=form(car_jpg), headers=auth)
    assert (await r.json())["usage"]["calls"] == 3


async def test_info_lists_webhooks_and_never_the_token(make_client):
    token = "s3cret-token-value"
    hooks = ["http://127.0.0.1:9/hook-a", "http://127.0.0.1:9/hook-b"]
    client = await make_client(token=token, webhooks=hooks)
    r = await client.get("/info/", headers={"Authorization": f"Token {token}"})
    assert r.status == 200
    text = await r.text()
    assert token not in text
    info = json.loads(text)
    assert {"version", "license_key", "webhooks"} <= info.keys()
    assert [(w["id"], w["target"], w["event"]) for w in info["webhooks"]] == [
        (1, hooks[0], "image.done"), (2, hooks[1], "image.done")]
    # what mmc can fill with the installed models is said, not left to be guessed
    assert info["mmc"]["model_make"] is None
    assert "scripts/eval_colors.py" in info["mmc"]["color"]  # what the colour is, and why
    assert "Sedan" in info["mmc"]["vehicle_type"] and "unknown" in info["mmc"]["note"]


async def test_status_merges_the_provider_and_metrics_are_served(make_client, car_jpg):
    client = await make_client(status_provider=lambda: {"cameras": {"gate": {"fps": 5}}})
    await client.post("/v1/plate-reader/", data=form(car_jpg))
    status = await (await client.get("/status/")).json()
    assert status["cameras"] == {"gate": {"fps": 5}}
    assert status["engine"]["processed"] >= 1
    assert status["http"]["usage"]["usage"]["calls"] == 1
    r = await client.get("/metrics")
    assert r.status == 200 and r.content_type == "text/plain"
    text = await r.text()
    assert 'platestream_http_requests_total{code="201",route="/v1/plate-reader"}' in text
