"""Snapshot webhooks delivered to a real aiohttp receiver on 127.0.0.1, and kept across a
restart while the receiver is down."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from tests.stream.http.snapshot_helpers import CAR_PLATE, form


class Receiver:
    """A webhook receiver; answers 503 while ``accept`` is False."""

    def __init__(self) -> None:
        self.accept = True
        self.attempts = 0
        self.payloads: asyncio.Queue[dict] = asyncio.Queue()

    async def handle(self, request: web.Request) -> web.Response:
        self.attempts += 1
        if not self.accept:
            return web.Response(status=503)
        assert request.content_type == "application/json"
        await self.payloads.put(await request.json())
        return web.Response(status=200)

    async def next(self, timeout: float = 30.0) -> dict:
        return await asyncio.wait_for(self.payloads.get(), timeout)


@pytest.fixture
async def receiver(aiohttp_server):
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/hook", rec.handle)
    server = await aiohttp_server(app)
    rec.url = str(server.make_url("/hook"))
    return rec


async def test_each_result_is_posted_to_every_target(make_client, receiver, car_jpg):
    client = await make_client(webhooks=[receiver.url, receiver.url + "?second"])
    r = await client.post("/v1/plate-reader/", data=form(car_jpg, camera_id="gate"))
    assert r.status == 201
    answer = await r.json()
    hooks = [await receiver.next(), await receiver.next()]
    hooks.sort(key=lambda h: h["hook"]["id"])
    assert [h["hook"] for h in hooks] == [
        {"target": receiver.url, "id": 1, "event": "image.done"},
        {"target": receiver.url + "?second", "id": 2, "event": "image.done"},
    ]
    for hook in hooks:
        assert hook["data"] == answer  # the very result the client got
        assert CAR_PLATE in [res["plate"] for res in hook["data"]["results"]]
    for _ in range(200):  # the worker acks just after the receiver has answered
        info = await (await client.get("/info/")).json()
        if [w["delivered"] for w in info["webhooks"]] == [1, 1]:
            break
        await asyncio.sleep(0.05)
    assert [(w["delivered"], w["pending"]) for w in info["webhooks"]] == [(1, 0), (1, 0)]


async def test_pending_deliveries_survive_a_restart(make_client, receiver, car_jpg):
    receiver.accept = False
    client = await make_client(webhooks=[receiver.url])
    r = await client.post("/v1/plate-reader/", data=form(car_jpg))
    answer = await r.json()
    while receiver.attempts == 0:  # spooled and tried once
        await asyncio.sleep(0.05)
    info = await (await client.get("/info/")).json()
    assert info["webhooks"][0]["pending"] == 1
    await client.close()  # the server stops with the delivery still pending

    receiver.accept = True
    client = await make_client(webhooks=[receiver.url])  # same data_dir: the same spool
    hook = await receiver.next()
    assert hook["data"]["filename"] == answer["filename"]
    assert hook["hook"]["event"] == "image.done"
