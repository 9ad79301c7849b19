"""One test per entry of ``../shared/api_examples/client_requests/``: the request exactly as that
client sends it (method, URL, headers, body encoding, parts in order, example image) to a real
``platestream serve``, reading exactly the fields the client reads, asserting what makes it pass.

Two servers run for the module: ``open`` (no token, as the SDK-mode clients expect; webhooks
to the four receivers; ``allow_url_hosts: [127.0.0.1]`` for ``upload_url``) and ``tokened``.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from stream.http.usage import MAX_CALLS
from tests.stream.http.client_wire import (
    CURL,
    NODE_FETCH,
    PYTHON_REQUESTS,
    TOKEN,
    Part,
    Receivers,
    Serve,
    curl_boundary,
    entry,
    example_image,
    node_boundary,
    parts_of,
    post_multipart,
    requests_boundary,
    send,
    start_serve,
)

pytestmark = pytest.mark.usefixtures("servers")

_SERVERS: dict[str, Serve] = {}


@pytest.fixture(scope="module")
def receivers() -> Iterator[Receivers]:
    r = Receivers()
    r.start()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def servers(tmp_path_factory, receivers) -> Iterator[dict[str, Serve]]:
    tmp = tmp_path_factory.mktemp("client_requests")
    hooks = [{"url": receivers.url("reader")}] + [
        {"url": receivers.url(n), "image": True} for n in ("flask", "js")]
    try:
        _SERVERS["open"] = start_serve(tmp, {"webhooks": hooks,
                                             "allow_url_hosts": ["127.0.0.1"]}, "open")
        _SERVERS["tokened"] = start_serve(tmp, {"token": TOKEN,
                                                "allow_url_hosts": ["127.0.0.1"]}, "tokened")
        yield _SERVERS
    finally:
        for s in _SERVERS.values():
            s.stop()
        for s in _SERVERS.values():
            assert "Traceback" not in s.log(), s.log()[-3000:]
        _SERVERS.clear()


def base(name: str = "open") -> str:
    return _SERVERS[name].base


def sdk_url(path: str = "/v1/plate-reader/") -> str:
    return base() + path


def check_docs_result(result: dict) -> None:
    """The fields of the docs' response table, with their types."""
    assert isinstance(result["plate"], str) and result["plate"]
    assert {"xmin", "ymin", "xmax", "ymax"} == set(result["box"])
    assert 0 <= result["dscore"] <= 1 and 0 <= result["score"] <= 1
    assert {"type", "score", "box"} <= set(result["vehicle"])
    assert isinstance(result["region"]["code"], str) and 0 <= result["region"]["score"] <= 1
    assert result["candidates"][0]["plate"] == result["plate"]


def check_docs_answer(status: int, body: dict, *, results: bool = True) -> list[dict]:
    assert status == 201, body
    for key in ("processing_time", "results", "filename", "version", "camera_id", "timestamp"):
        assert key in body
    if results:
        assert body["results"], body
        for r in body["results"]:
            check_docs_result(r)
    return body["results"]


def check_mmc(result: dict) -> None:
    """Never an empty list: clients index [0] (issue 12 §1)."""
    mm, color, orient = result["model_make"][0], result["color"][0], result["orientation"][0]
    assert {"make", "model", "score"} == set(mm) and mm["make"] and mm["model"]
    assert {"color", "score"} == set(color) and color["color"] in (
        "black", "blue", "brown", "green", "red", "silver", "white", "yellow", "unknown")
    assert {"orientation", "score"} == set(orient) and orient["orientation"] in (
        "Front", "Rear", "Unknown")


# ---------------------------------------------------------------- parkpow plate_recognition.py

async def _parkpow(name: str, **override) -> tuple[int, dict, dict]:
    doc = entry(name)
    return await post_multipart(sdk_url(), parts_of(doc, **override),
                                user_agent=PYTHON_REQUESTS, boundary=requests_boundary())


async def test_parkpow_plate_recognition_json():
    status, _, body = await _parkpow("parkpow_plate_recognition_json.json")
    assert 200 <= status <= 300
    json.dumps(body, indent=2)  # printed as is
    assert body["results"]


async def test_parkpow_plate_recognition_csv():
    doc = entry("parkpow_plate_recognition_csv.json")
    parts = [Part("regions", b"us-ca"), Part("regions", b"mx"),
             Part("config", b'{"region": "strict"}'), Part("camera_id", b"cam1"),
             Part("mmc", b"True"), parts_of(doc)[-1]]
    status, _, body = await post_multipart(sdk_url(), parts, user_agent=PYTHON_REQUESTS,
                                           boundary=requests_boundary())
    assert 200 <= status <= 300
    results = body.pop("results")
    body.pop("usage", None)
    rows = [{**body, **_flatten(r)} for r in results] or [dict(body)]
    header = max(rows, key=len).keys()
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(header))
    writer.writeheader()
    writer.writerows(rows)  # ValueError if a row had keys outside the header
    assert out.getvalue().count("\n") == len(rows) + 1


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}_"))
        else:
            out[f"{prefix}{k}"] = json.dumps(v) if isinstance(v, list) else v
    return out


async def test_parkpow_plate_recognition_split_image():
    doc = entry("parkpow_plate_recognition_split_image.json")
    from PIL import Image

    img = Image.open(io.BytesIO(example_image(doc["request"]["body"]["parts_in_order"][1])))
    w, h = img.size
    tiles = [img] + [img.crop(b) for b in ((0, 0, w * 3 // 5, h * 3 // 5),
                                           (w * 2 // 5, 0, w, h * 3 // 5))]
    for tile in tiles:
        buf = io.BytesIO()
        tile.save(buf, "JPEG")
        parts = [Part("config", b"{}"), Part("upload", buf.getvalue(), "upload")]
        status, _, body = await post_multipart(sdk_url(), parts, user_agent=PYTHON_REQUESTS,
                                               boundary=requests_boundary())
        assert 200 <= status <= 300
        _ = body["camera_id"], body["timestamp"], body["processing_time"]  # hard indexing
        for r in body["results"]:
            _ = [r["box"][k] + 1 for k in ("xmin", "ymin", "xmax", "ymax")]
            assert isinstance(r["vehicle"], dict) and isinstance(r["score"], float)


async def test_parkpow_plate_recognition_crop_lp():
    status, _, body = await _parkpow("parkpow_plate_recognition_crop_lp.json")
    assert 200 <= status <= 300
    results = [r for r in body.get("results", []) if r["plate"]]
    assert results
    for r in results:
        box = r["box"]
        assert 0 <= box["xmin"] < box["xmax"] <= body["image_width"]
        assert 0 <= box["ymin"] < box["ymax"] <= body["image_height"]
        assert f"{r['plate']}_{r['region']['code']}_car22.jpg"


async def test_parkpow_plate_recognition_crop_vehicle():
    status, _, body = await _parkpow("parkpow_plate_recognition_crop_vehicle.json")
    assert 200 <= status <= 300
    with_vehicle = [r for r in body.get("results", []) if r["vehicle"]["score"]]
    assert with_vehicle
    for r in with_vehicle:
        assert set(r["vehicle"]["box"]) == {"xmin", "ymin", "xmax", "ymax"}
        assert r["vehicle"]["type"]
        assert r.get("model_make", [None])[0] is None  # absent without mmc


async def test_parkpow_plate_recognition_mmc():
    status, _, body = await _parkpow("parkpow_plate_recognition_mmc.json")
    assert 200 <= status <= 300
    assert body["results"]
    for r in body["results"]:
        first = r.get("model_make", [None])[0]  # IndexError on [] was the failure
        assert first and first["make"] and first["model"]
        check_mmc(r)


async def test_parkpow_plate_recognition_annotate():
    status, _, body = await _parkpow("parkpow_plate_recognition_annotate.json")
    assert 200 <= status <= 300 and "results" in body
    for r in body["results"]:
        assert r["box"]["xmax"] <= body["image_width"] and r["plate"]


async def test_parkpow_plate_recognition_vehicle_mode_csv():
    status, _, body = await _parkpow("parkpow_plate_recognition_vehicle_mode_csv.json")
    assert 200 <= status <= 300
    _ = (body.get("filename"), body.get("timestamp"), body.get("camera_id"),
         body.get("usage", {}), body.get("processing_time"))
    results = [r for r in body.get("results", []) if r.get("vehicle")]
    assert results
    for r in results:
        plate = r["plate"]
        if plate is not None:
            _ = plate.get("box"), plate.get("score")
            top = plate.get("props", {}).get("plate", [])[0]
            assert isinstance(top.get("value"), str) and 0 <= top.get("score") <= 1
            region = plate.get("props", {}).get("region", [])[0]
            assert isinstance(region.get("value"), str)
        vehicle = r["vehicle"]
        assert vehicle.get("type") and set(vehicle.get("box")) == {"xmin", "ymin", "xmax", "ymax"}
        props = vehicle.get("props", {})
        for key in ("make_model", "color", "orientation"):
            assert isinstance(props.get(key, []), list)
        for item in props.get("color", []) + props.get("orientation", []):
            assert {"value", "score"} <= set(item)


async def test_parkpow_number_plate_redaction():
    doc = entry("parkpow_number_plate_redaction.json")
    status, _, body = await post_multipart(sdk_url(), parts_of(doc), user_agent=PYTHON_REQUESTS,
                                           boundary=requests_boundary())
    assert 200 <= status <= 300, body
    assert body["results"]
    for r in body["results"]:
        _ = [r["box"][k] for k in ("xmin", "ymin", "xmax", "ymax")]
        assert isinstance(r["vehicle"], dict) and r["vehicle"].get("score") is not None
        assert isinstance(r["score"], float) and isinstance(r["plate"], str)


async def test_parkpow_benchmark_snapshot():
    doc = entry("parkpow_benchmark_snapshot.json")
    for _ in range(2):  # the warm-up calls; only the time of the call is read
        status, _, _ = await post_multipart(sdk_url(), parts_of(doc), user_agent=PYTHON_REQUESTS,
                                            boundary=requests_boundary())
        assert status == 201


async def test_parkpow_genetec_snapshot_api():
    doc = entry("parkpow_genetec_snapshot_api.json")
    fields = doc["request"]["body"]["fields_in_order"]
    b64 = base64.b64encode(example_image(fields[0])).decode()
    pairs = [("upload", b64)] + [(f["name"], f["example"]) for f in fields[1:]]
    body = urllib.parse.urlencode(pairs).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded",
               "Authorization": f"Token {TOKEN}", "User-Agent": "python-urllib3/2.2.3",
               "Accept-Encoding": "identity"}
    status, _, doc_ = await send("POST", base("tokened") + "/v1/plate-reader/", headers=headers,
                                 body=body)
    assert status == 201 and doc_["timestamp"] == "2024-10-24T17:29:26.000000Z"
    assert doc_["camera_id"] == "Gate-1"
    # the error bodies it reads: detail on 403/400, error on 413
    status, _, err = await send("POST", base("tokened") + "/v1/plate-reader/",
                                headers={**headers, "Authorization": "Token nope"}, body=body)
    assert status == 403 and "detail" in err
    status, _, err = await send("POST", base("tokened") + "/v1/plate-reader/", headers=headers,
                                body=urllib.parse.urlencode([("upload", "!!")]).encode())
    assert status == 400 and "detail" in err
    big = urllib.parse.urlencode([("upload", "A" * (8 * 1024 * 1024))]).encode()
    status, _, err = await send("POST", base("tokened") + "/v1/plate-reader/", headers=headers,
                                body=big)
    assert status == 413 and "5 MiB" in err["error"]


async def test_parkpow_transfer():
    status, _, body = await send("GET", "http://localhost:" + base().rsplit(":", 1)[1] + "/",
                                 headers={"User-Agent": PYTHON_REQUESTS}, timeout=2)
    assert status == 200
    doc = entry("parkpow_transfer.json")
    parts = parts_of({"request": doc["request"][1]})
    url = "http://localhost:" + base().rsplit(":", 1)[1] + "/v1/plate-reader"
    status, _, body = await post_multipart(url, parts, user_agent=PYTHON_REQUESTS,
                                           boundary=requests_boundary())
    assert body["results"]


# ---------------------------------------------------------------- Home Assistant, Node-RED

async def _hass(name: str) -> None:
    doc = entry(name)
    parts = parts_of(doc)
    url = base("tokened") + "/v1/plate-reader/"
    status, _, stats = await send("GET", base("tokened") + "/v1/statistics/",
                                  headers={"Authorization": f"Token {TOKEN}"})
    assert status == 200 and stats["total_calls"] - stats["usage"]["calls"] > 0  # calls left
    for with_options in (True, False):
        ps = parts if with_options else [
            p for p in parts if p.name not in ("regions",)]
        if not with_options:
            ps = [Part(p.name, b"False" if p.name == "mmc" else b"{}" if p.name == "config"
                       else p.value, p.filename, p.content_type) for p in ps]
        status, _, body = await post_multipart(url, ps, user_agent=PYTHON_REQUESTS,
                                               boundary=requests_boundary(), token=TOKEN)
        results = body["results"] if name == "hass_robmarkcole.json" else body.get("results", [])
        for r in results:
            _ = ([c["plate"] for c in r["candidates"]], r["plate"], r["score"],
                 r["region"]["code"], r["vehicle"]["type"],
                 [r["box"][k] for k in ("xmin", "ymin", "xmax", "ymax")])
            if with_options:
                _ = [o["orientation"] for o in r["orientation"] if o["score"] >= 0.7]
        assert body["usage"]["max_calls"] - body["usage"]["calls"] > 0
        assert status == 201


async def test_hass_robmarkcole():
    await _hass("hass_robmarkcole.json")


async def test_hass_enhanced():
    await _hass("hass_enhanced.json")


async def test_nodered():
    doc = entry("nodered.json")
    parts = parts_of(doc, camera_id="", regions="us-ca")
    status, _, body = await post_multipart(
        base("tokened") + "/v1/plate-reader/", parts, user_agent=NODE_FETCH,
        boundary=node_boundary(), token=TOKEN, sep=";", extra={"Connection": "close"})
    assert 200 <= status <= 299
    assert len(body["results"]) >= 1
    for r in body["results"]:
        assert r["plate"].upper() and round(r["score"], 1) >= 0
    assert body["camera_id"] is None  # the empty field comes back as null


async def test_nodered_statistics():
    status, _, body = await send("GET", base("tokened") + "/v1/statistics/",
                                 headers={"Authorization": f"Token {TOKEN}",
                                          "User-Agent": NODE_FETCH})
    assert status == 200
    golden = json.loads((Path(__file__).resolve().parents[3].parent /
                         "shared/api_examples/cloud_statistics_response.json").read_text())
    assert set(body) == set(golden) and set(body["usage"]) == set(golden["usage"])
    assert body["total_calls"] == MAX_CALLS > body["usage"]["calls"]


# ---------------------------------------------------------------- documented curl requests

async def _curl(parts: list[Part], *, server: str = "tokened", path: str = "/v1/plate-reader/",
                token: str | None = TOKEN) -> tuple[int, dict, dict]:
    return await post_multipart(base(server) + path, parts, user_agent=CURL,
                                boundary=curl_boundary(), token=token)


async def test_docs_curl_upload_file():
    status, _, body = await _curl(parts_of(entry("docs_curl_upload_file.json")), server="open",
                                  token=None)
    check_docs_answer(status, body)


async def test_docs_curl_upload_base64():
    doc = entry("docs_curl_upload_base64.json")
    part = doc["request"]["body"]["parts_in_order"][0]
    text = base64.encodebytes(example_image(part))  # with MIME line breaks
    status, _, body = await _curl([Part("upload", text)], server="open", token=None)
    check_docs_answer(status, body)


async def test_docs_curl_regions_mmc_config_fast():
    status, _, body = await _curl(parts_of(entry("docs_curl_regions_mmc_config_fast.json")),
                                  server="open", token=None)
    for r in check_docs_answer(status, body):
        check_mmc(r)


async def test_docs_curl_sdk_info():
    status, _, body = await send("GET", base() + "/info/", headers={"User-Agent": CURL})
    golden = json.loads((Path(__file__).resolve().parents[3].parent /
                         "shared/api_examples/sdk_info_response.json").read_text())
    assert status == 200 and set(golden) <= set(body)
    assert [w["target"] for w in body["webhooks"]][:1]


async def test_docs_curl_config_region_strict():
    doc = entry("docs_curl_config_region_strict.json")
    img = parts_of(doc, **{"regions or region": None})[0]
    for field in ("regions", "region"):  # the docs use both spellings
        status, _, body = await _curl([img, Part(field, b"us-ca"),
                                       Part("config", b'{"region":"strict"}')])
        assert status == 201, body
        assert all(r["region"]["code"].startswith("us") for r in body["results"])


async def test_docs_curl_upload_url(tmp_path):
    image = example_image({"example_image": "../../evaldata/images/eu/eu3.jpg"})
    with _image_server(image) as url:
        status, _, body = await _curl([Part("upload_url", url.encode())],
                                      path="/v1/plate-reader")
    check_docs_answer(status, body)
    assert body["filename"].endswith("image.jpg")


async def test_docs_curl_config_thresholds():
    status, _, body = await _curl(parts_of(entry("docs_curl_config_thresholds.json")))
    for r in check_docs_answer(status, body):
        assert r["dscore"] >= 0.2 and r["score"] >= 0.6


async def test_docs_curl_config_detection_rule():
    status, _, body = await _curl(parts_of(entry("docs_curl_config_detection_rule.json")))
    for r in check_docs_answer(status, body):
        assert r["vehicle"]["score"] > 0  # inside a vehicle


async def test_docs_curl_config_detection_mode():
    status, _, body = await _curl(parts_of(entry("docs_curl_config_detection_mode.json")))
    assert status == 201, body
    golden = json.loads((Path(__file__).resolve().parents[3].parent / "shared/api_examples/"
                         "snapshot_cloud_plate_reader_response_detection_mode_vehicle.json"
                         ).read_text())
    assert body["results"]
    assert any(r["plate"] is None for r in body["results"])  # vehicles without a plate too
    for r in body["results"]:
        assert set(r) == set(golden["results"][0])
        if r["vehicle"] is not None:
            assert set(r["vehicle"]) == set(golden["results"][0]["vehicle"])
        if r["plate"] is not None:
            assert set(r["plate"]) == set(golden["results"][0]["plate"])
            assert set(r["plate"]["props"]) == {"plate", "region"}


async def test_docs_curl_config_mode_redaction():
    status, _, body = await _curl(parts_of(entry("docs_curl_config_mode_redaction.json")))
    check_docs_answer(status, body)


async def test_docs_curl_config_text_formats():
    status, _, body = await _curl(parts_of(entry("docs_curl_config_text_formats.json")))
    check_docs_answer(status, body)


async def test_docs_curl_camera_id_timestamp():
    doc = entry("docs_curl_camera_id_timestamp.json")
    for sent, back in (("2019-08-19T13:11:25", "2019-08-19T13:11:25.000000Z"),
                       ("2019-08-19T13:11:25Z", "2019-08-19T13:11:25.000000Z"),
                       ("2019-08-19T13:11:25+02:00", "2019-08-19T11:11:25.000000Z")):
        status, _, body = await _curl(parts_of(doc, timestamp=sent))
        check_docs_answer(status, body)
        assert body["camera_id"] == "cam-1" and body["timestamp"] == back


async def test_docs_variants_field_spellings():
    img = parts_of(entry("docs_variants_field_spellings.json"), **{"mmc | regions": None})[0]
    status, _, body = await _curl([img, Part("mmc", b"True")])
    for r in check_docs_answer(status, body):
        check_mmc(r)
    status, _, body = await _curl([img, Part("regions", b"mx,us-ca")])
    check_docs_answer(status, body)
    for code in ("th-37", "cb", "ae-du", "pe-lim", "br_sc"):  # documented codes
        status, _, body = await _curl([img, Part("regions", code.encode())])
        assert status == 201, (code, body)
    status, _, body = await _curl([img, Part("regions", b"zz-qq")])
    assert status == 400 and "zz-qq" in body["detail"]


async def test_docs_variants_base64_bodies():
    image = example_image({"example_image": "../../evaldata/images/eu/eu3.jpg"})
    b64 = base64.b64encode(image).decode()
    url = base("tokened") + "/v1/plate-reader/"
    auth = {"Authorization": f"Token {TOKEN}", "User-Agent": CURL}
    for upload in (f"data:image/jpeg;base64,{b64}", b64):
        parts = [Part("upload", upload.encode()), Part("regions", b"us-ca"),
                 Part("camera_id", b"c2"), Part("mmc", b"true")]
        status, _, body = await _curl(parts)
        check_docs_answer(status, body)
        assert body["camera_id"] == "c2"
    form = urllib.parse.urlencode([("upload", b64), ("regions", "us-ca"),
                                   ("camera_id", "c2"), ("mmc", "true")]).encode()
    status, _, body = await send("POST", url, body=form, headers={
        **auth, "Content-Type": "application/x-www-form-urlencoded"})
    check_docs_answer(status, body)
    doc = json.dumps({"upload": b64, "regions": ["us-ca"], "camera_id": "j1", "mmc": True})
    status, _, body = await send("POST", url, body=doc.encode(), headers={
        **auth, "Content-Type": "application/json"})
    check_docs_answer(status, body)
    assert body["camera_id"] == "j1"


async def test_docs_curl_statistics():
    for path in ("/v1/statistics/", "/v1/statistics"):
        status, _, body = await send("GET", base("tokened") + path,
                                     headers={"Authorization": f"Token {TOKEN}",
                                              "User-Agent": CURL})
        assert status == 200
        assert set(body) == {"usage", "total_calls"}
        assert set(body["usage"]) == {"month", "calls", "year", "resets_on"}
        assert body["total_calls"] - body["usage"]["calls"] > 0  # the period's allowance


async def test_docs_curl_auth():
    img = parts_of(entry("docs_curl_upload_file.json"))
    url = base("tokened") + "/v1/plate-reader/"
    boundary = curl_boundary()
    from tests.stream.http.client_wire import multipart

    body = multipart(img, boundary)
    ctype = f"multipart/form-data; boundary={boundary}"
    for auth, expected, detail in (
        (f"Token {TOKEN}", 201, None), (f"Bearer {TOKEN}", 201, None),
        (None, 403, "Authentication credentials were not provided."),
        ("Token nope", 403, "Invalid token."),
    ):
        headers = {"User-Agent": CURL, "Content-Type": ctype}
        if auth:
            headers["Authorization"] = auth
        status, _, doc = await send("POST", url, headers=headers, body=body)
        assert status == expected, doc
        if detail:
            assert doc == {"detail": detail}
    status, _, doc = await send("GET", url, headers={"Authorization": f"Token {TOKEN}"})
    assert status == 405 and "detail" in doc


async def test_docs_cors():
    origin = "http://example.test"
    status, headers, _ = await send("OPTIONS", base() + "/v1/plate-reader/", headers={
        "Origin": origin, "Access-Control-Request-Method": "POST"})
    assert status in (200, 204)
    assert headers["Access-Control-Allow-Origin"] in ("*", origin)
    assert "POST" in headers["Access-Control-Allow-Methods"]
    status, headers, body = await _curl(parts_of(entry("docs_curl_upload_file.json")),
                                        server="open", token=None) if False else (None, None, None)
    parts = parts_of(entry("docs_curl_upload_file.json"))
    status, headers, body = await post_multipart(
        base() + "/v1/plate-reader/", parts, user_agent=CURL, boundary=curl_boundary(),
        extra={"Origin": origin})
    assert status == 201 and headers["Access-Control-Allow-Origin"] in ("*", origin)
    check_docs_answer(status, body)


# ---------------------------------------------------------------- webhook receivers

async def _request_for_webhook(camera_id: str) -> dict:
    parts = [Part("camera_id", camera_id.encode()), Part("mmc", b"true"),
             Part("upload", example_image({"example_image": "../../evaldata/images/eu/eu1.jpg"}),
                  "eu1.jpg")]
    status, _, body = await post_multipart(sdk_url(), parts, user_agent=CURL,
                                           boundary=curl_boundary())
    assert status == 201 and body["results"]
    return body


def _for(camera_id: str):
    return lambda p: p.get("data", {}).get("camera_id") == camera_id


async def test_webhook_reader_expectation(receivers):
    body = await _request_for_webhook("hook-reader")
    got = receivers.wait_for("reader", _for("hook-reader"))
    assert got["hook"]["event"] == "image.done" and got["data"]["results"] == body["results"]


async def test_webhook_reader_flask_expectation(receivers):
    await _request_for_webhook("hook-flask")
    got = receivers.wait_for("flask", _for("hook-flask"))
    assert got["data"]["results"]
    assert any(name.endswith("eu1.jpg") for name, _ in receivers.got["flask"].files)


async def test_webhook_reader_js_expectation(receivers):
    await _request_for_webhook("hook-js")
    got = receivers.wait_for("js", _for("hook-js"))
    assert got["data"]["results"] and receivers.got["js"].errors == []


async def test_webhook_lambda_expectation(tmp_path, receivers):
    # The Lambda receiver fails on any payload without mmc lists, and a target's deliveries
    # go in order: its own server, whose clients all ask for mmc, as its users would run it.
    srv = start_serve(tmp_path, {"webhooks": [{"url": receivers.url("lambda"), "image": True}]},
                      "lambda")
    try:
        _SERVERS["lambda"] = srv
        parts = [Part("camera_id", b"hook-lambda"), Part("mmc", b"true"),
                 Part("upload", example_image(
                     {"example_image": "../../evaldata/images/eu/eu1.jpg"}), "eu1.jpg")]
        status, _, body = await post_multipart(srv.base + "/v1/plate-reader/", parts,
                                               user_agent=CURL, boundary=curl_boundary())
        assert status == 201 and body["results"]
        got = receivers.wait_for("lambda", _for("hook-lambda"))
        for r in got["data"]["results"]:
            check_mmc(r)
    finally:
        srv.stop()


# ---------------------------------------------------------------- helpers

class _ImageHandler(BaseHTTPRequestHandler):
    image = b""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/image.jpg")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(self.image)))
        self.end_headers()
        self.wfile.write(self.image)

    def log_message(self, *args) -> None:
        pass


class _image_server:
    """A real HTTP server on 127.0.0.1 serving one JPEG at /image.jpg (and /redirect)."""

    def __init__(self, image: bytes, path: str = "/image.jpg") -> None:
        handler = type("H", (_ImageHandler,), {"image": image})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.path = path
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{self.path}"

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


_ = re  # used by callers extending these checks
