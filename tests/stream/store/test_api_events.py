"""/api/v1/events and /api/v1/known-plates served by the real aiohttp app on 127.0.0.1."""

from __future__ import annotations

import asyncio
import csv
import io

import aiohttp
import pytest

from stream.http import ServerSettings, create_app
from stream.known_plates import KnownListConfig, KnownPlates
from stream.store import EventQuery
from tests.stream.store.conftest import event

JPEG = b"\xff\xd8\xff\xe0" + b"j" * 500


@pytest.fixture
def make_api(aiohttp_client, api_worker, tmp_path, store):
    async def make(token: str | None = None, with_store: bool = True):
        (tmp_path / "staff.csv").write_text("ab123cd,Ann,van\n")
        known = KnownPlates.from_config({"staff": KnownListConfig("staff", file="staff.csv")},
                                        tmp_path, backend=store)
        app = create_app(api_worker, ServerSettings(token=token, data_dir=str(tmp_path / "d")),
                         status_provider=lambda: {"outputs": {"store": {"pending": 0}}},
                         store=store if with_store else None, known=known)
        return await aiohttp_client(app)

    return make


async def test_events_search_detail_images_and_csv(make_api, store):
    lst = {"list": "staff", "name": "Ann", "plate": "ab123cd", "distance": 1}
    for i in range(30):
        store.put(event(i, "ab123ce" if i % 10 == 0 else f"zz{i:03d}yy", known=(
            lst if i % 10 == 0 else None)),
                  images={"vehicle": JPEG, "plate": JPEG[:100]} if i == 20 else None)
    c = await make_api()
    r = await c.get("/api/v1/events", params={"plate": "AB123CE", "limit": "2"})
    assert r.status == 200
    body = await r.json()
    assert [e["event_id"] for e in body["events"]] == ["ev-20", "ev-10"] and body["next"]
    r2 = await (await c.get("/api/v1/events", params={"plate": "AB123CE",
                                                      "cursor": body["next"]})).json()
    assert [e["event_id"] for e in r2["events"]] == ["ev-0"] and r2["next"] is None
    e = body["events"][0]
    assert e["known_plate"] == lst and e["camera"] == "gate" and e["plate"] == "ab123ce"
    assert e["time"] == "2026-11-27T08:00:20.000000Z" and e["data"]["results"][0]["box"]
    assert e["images"] == {"vehicle": "/api/v1/events/ev-20/vehicle.jpg",
                           "plate": "/api/v1/events/ev-20/plate.jpg"}
    r = await c.get(e["images"]["vehicle"])
    assert r.status == 200 and r.content_type == "image/jpeg" and await r.read() == JPEG
    assert (await c.get("/api/v1/events/ev-10/plate.jpg")).status == 404
    assert (await (await c.get("/api/v1/events/ev-10")).json())["event_id"] == "ev-10"
    r = await c.get("/api/v1/events/nope")
    assert r.status == 404 and "nope" in (await r.json())["detail"]
    r = await c.get("/api/v1/events", params={"known": "staff", "since": "2026-11-27T08:00:05Z"})
    assert [x["event_id"] for x in (await r.json())["events"]] == ["ev-20", "ev-10"]
    r = await c.get("/api/v1/events.csv", params={"camera": "gate", "limit": "25"})
    assert r.status == 200 and r.content_type == "text/csv"
    rows = list(csv.reader(io.StringIO(await r.text())))
    assert rows[0][:3] == ["timestamp", "plate", "score"] and rows[0][-1] == "event_id"
    assert len(rows) == 26 and rows[1][1] == "zz029yy" and rows[1][-1] == "ev-29"


@pytest.mark.parametrize("params, name", [
    ({"since": "last tuesday"}, "since"), ({"limit": "500000"}, "limit"),
    ({"cursor": "x"}, "cursor"), ({"sort": "plate"}, "sort")])
async def test_filters_that_do_not_parse_are_400_naming_the_parameter(make_api, params, name):
    c = await make_api()
    for path in ("/api/v1/events", "/api/v1/events.csv"):
        r = await c.get(path, params=params)
        assert r.status == 400
        body = await r.json()
        assert body["param"] == name and body["detail"].startswith(f"{name}: ")


async def test_token_guards_the_api(make_api, store):
    store.put(event(1, "ab123cd"))
    c = await make_api(token="s3cret")
    for path in ("/api/v1/events", "/api/v1/events/ev-1", "/api/v1/known-plates",
                 "/api/v1/outputs", "/api/v1/events.csv"):
        assert (await c.get(path)).status == 403, path
        assert (await c.get(path, headers={"Authorization": "Token wrong"})).status == 403
        ok = await c.get(path, headers={"Authorization": "Token s3cret"})
        assert ok.status == 200, path
    assert (await c.post("/api/v1/known-plates", json={"list": "a", "plate": "ab12"})
            ).status == 403


async def test_store_off_answers_503(make_api):
    c = await make_api(with_store=False)
    r = await c.get("/api/v1/events")
    assert r.status == 503 and "store" in (await r.json())["detail"]


async def test_known_plates_crud_and_csv(make_api):
    c = await make_api()
    r = await c.post("/api/v1/known-plates", json={"list": "visitors", "plate": "CC-555-DD",
                                                   "name": "Carl"})
    assert r.status == 201
    assert await r.json() == {"list": "visitors", "plate": "cc555dd", "name": "Carl",
                              "note": "", "source": "api"}
    assert (await c.post("/api/v1/known-plates", json={"list": "visitors", "plate": "cc555dd"})
            ).status == 409
    assert (await c.post("/api/v1/known-plates", json={"list": "visitors"})).status == 400
    assert (await c.post("/api/v1/known-plates", data=b"{nope")).status == 400
    r = await c.put("/api/v1/known-plates/visitors/cc555dd", json={"note": "Thursdays"})
    assert (await r.json())["note"] == "Thursdays"
    r = await c.delete("/api/v1/known-plates/staff/ab123cd")
    assert r.status == 409 and "config file" in (await r.json())["detail"]
    assert (await c.delete("/api/v1/known-plates/visitors/zz999")).status == 404
    r = await c.post("/api/v1/known-plates.csv", params={"list": "visitors"},
                     data="plate,name,note\nee111ff,Eve,\n")
    assert await r.json() == {"imported": 1, "list": "visitors"}
    form = aiohttp.FormData()
    form.add_field("file", "gg222hh,Gus,\n??,bad,\n", filename="mine.csv",
                   content_type="text/csv")
    r = await c.post("/api/v1/known-plates.csv", params={"list": "visitors"}, data=form)
    assert r.status == 400 and (await r.json())["detail"].startswith("mine.csv: row 2: ")
    body = await (await c.get("/api/v1/known-plates", params={"list": "visitors"})).json()
    assert [p["plate"] for p in body["plates"]] == ["cc555dd", "ee111ff"]
    assert {x["name"] for x in body["lists"]} == {"staff", "visitors"}
    r = await c.get("/api/v1/known-plates.csv")
    assert await r.text() == ("list,plate,name,note\nstaff,ab123cd,Ann,van\n"
                              "visitors,cc555dd,Carl,Thursdays\nvisitors,ee111ff,Eve,\n")
    assert (await c.delete("/api/v1/known-plates/visitors/cc555dd")).status == 204
    outs = await (await c.get("/api/v1/outputs")).json()
    assert outs == {"outputs": {"store": {"pending": 0}}}


async def test_snapshot_results_are_stored_too(make_api, store, evaldata):
    from tests.stream.http.snapshot_helpers import CAR

    c = await make_api()
    form = aiohttp.FormData()
    form.add_field("upload", (evaldata / CAR).read_bytes(), filename="car.jpg",
                   content_type="image/jpeg")
    form.add_field("camera_id", "desk")
    r = await c.post("/v1/plate-reader/", data=form)
    assert r.status == 201
    result = await r.json()
    plates = [x["plate"] for x in result["results"]]
    assert plates

    def stored():
        return store.query(EventQuery(camera="desk")).events

    for _ in range(100):  # bounded: the store's delivery thread writes it
        if len(stored()) == len(plates):
            break
        await asyncio.sleep(0.1)
    events = stored()
    assert sorted(e.plate for e in events) == sorted(plates)
    assert all(e.source == "snapshot" and e.data["results"][0]["plate"] == e.plate
               for e in events)
