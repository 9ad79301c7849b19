"""The hub's web console in a real browser (Debian's chromium driven by Playwright), on real
processes: Debian's mosquitto, one `platestream hub` with a token, one real-time
`platestream run` node (a sample video, looped) and a second node made of the real node-side
parts (the mqtt output's sender and the heartbeat publisher), all on 127.0.0.1.

Checks: the Nodes page lists both nodes online with their cameras; the events page shows each
event's node and filters by node; the run node frozen (SIGSTOP: silent, its connection open)
and then killed (SIGKILL) shows offline on the open page, without a reload, within 2 x
heartbeat, and online again in between; the API still needs the token with the console on.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from stream.delivery.mqtt_config import MqttConfig
from stream.node_status import NodeStatusPublisher
from tests.stream.fleet import PREFIX, HubProcess, Node, run_node, stop_node
from tests.stream.helpers import wait_for

CHROMIUM = os.environ.get("PLATESTREAM_CHROMIUM", "/usr/bin/chromium")
TOKEN = "hub-console-token-7f3e"
HEARTBEAT = 2.0  # a loaded machine delays a 1 s heartbeat now and then: no false "offline"
SLACK_S = 1.5  # the page's live stream sends the nodes once a second

playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
if not shutil.which(CHROMIUM) and not Path(CHROMIUM).is_file():
    pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)


def test_hub_console_nodes_events_by_node_and_offline_live(broker, tmp_path, evaldata):
    hub = HubProcess(tmp_path, broker.port, "hub", {"path": "events.sqlite"},
                     heartbeat=30.0, token=TOKEN)  # the nodes' own heartbeat (2 s) wins
    north, north_log, north_dir = run_node(
        tmp_path, broker.port, "north", str(evaldata / "videos/license_plate.mp4"), evaldata,
        heartbeat=HEARTBEAT, realtime=True)
    south = Node(tmp_path, broker.port, "south")
    south_status = NodeStatusPublisher(
        MqttConfig(host="127.0.0.1", port=broker.port, topic_prefix=PREFIX, discovery=False),
        "south", HEARTBEAT, lambda: {"cameras": {"gate": {"state": "stalled", "fps": 0.0,
                                                           "frames_dropped": 7}},
                                     "outputs": {"hub": {"type": "mqtt", "pending": 3}}})
    south_status.start()
    try:
        # the API still needs the token: the console's login does not open it to anyone
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(hub.base + "/api/v1/nodes", timeout=5)
        assert err.value.code == 403
        south.event("XY987ZT")
        assert wait_for(lambda: any(e["plate"].upper() == "LS15EBC"
                                    for e in hub.events("&node=north")), 120), \
            hub.tail() + (north_dir / "node.log").read_text()[-2000:]

        with playwright_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM)
            try:
                _browse(browser, hub, north)
            finally:
                browser.close()
        assert TOKEN not in hub.tail()
    finally:
        south_status.stop()
        south.close()
        stop_node(north, north_log)
        hub.stop()


def _browse(browser, hub: HubProcess, north) -> None:  # noqa: ANN001
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(30_000)
    nodes = context.new_page()
    errors: list[str] = []
    nodes.on("pageerror", lambda e: errors.append(str(e)))
    nodes.goto(hub.base + "/ui/nodes")
    assert "/ui/login" in nodes.url
    nodes.fill("#token", TOKEN)
    nodes.click("button[type=submit]")
    nodes.wait_for_url(hub.base + "/ui/nodes")
    nodes.wait_for_selector("#live-state.on", timeout=10_000), errors

    # both nodes online, with their cameras and what their heartbeat says
    card = nodes.locator("article[data-node='north']")
    card.locator("[data-field=state]:text-is('online')").wait_for()
    card.locator("tr[data-camera='street'] .pill-streaming").wait_for()
    assert card.locator("[data-field=version]").inner_text() not in ("", "–")
    assert card.locator("[data-field=outputs_pending]").inner_text().isdigit()
    seen = card.locator("[data-field=last_seen]")
    assert " s ago" in seen.inner_text() and seen.locator("time[datetime]").count() == 1
    sc = nodes.locator("article[data-node='south']")
    sc.locator("[data-field=state]:text-is('online')").wait_for()
    row = sc.locator("tr[data-camera='gate']")
    assert row.locator(".pill-stalled").count() == 1 and "7" in row.inner_text()
    assert sc.locator("[data-field=outputs_pending]").inner_text() == "3"
    assert "2 of 2 online" in nodes.locator("#node-count").inner_text()

    # events: the node of each event, and the filter by node (the form's select)
    events = context.new_page()
    events.goto(hub.base + "/ui/events")
    plates = _rows(events)
    assert ("XY987ZT", "south") in plates and ("LS15EBC", "north") in plates
    events.select_option("select[name=node]", "south")
    events.click(".filters button[type=submit]")
    events.wait_for_url("**/ui/events?*node=south*")
    assert _rows(events) == [("XY987ZT", "south")]
    events.goto(hub.base + "/ui/events?node=north")
    rows = _rows(events)
    assert rows and {n for _, n in rows} == {"north"} and ("LS15EBC", "north") in rows
    events.locator("tbody tr a").first.click()
    events.wait_for_selector("dd a[href='/ui/events?node=north']")  # the detail names it
    events.goto(hub.base + "/ui/")  # the hub's live page: every node's events, with the node
    events.wait_for_selector("#feed li .cam:text-is('south · gate')")
    events.wait_for_selector("#feed li .cam:text-is('north · street')")
    assert events.locator(".top nav a[href='/ui/nodes']").count() == 1
    events.close()

    # the run node freezes (a hung box, a cut link: its connection stays open, so the broker's
    # last will waits for the keepalive): the open page shows it offline, no reload, within
    # 2 x heartbeat; back online when it resumes
    nodes.evaluate("window.__same_page = true")
    offline = card.locator("[data-field=state]:text-is('offline')")
    north.send_signal(signal.SIGSTOP)
    t0 = time.monotonic()
    try:
        offline.wait_for(timeout=(2 * HEARTBEAT + 10) * 1000)
        took = time.monotonic() - t0
        assert "1 of 2 online" in nodes.locator("#node-count").inner_text()
        assert card.locator("tr[data-camera='street']").count() == 1  # what it last ran
    finally:
        north.send_signal(signal.SIGCONT)
    assert took <= 2 * HEARTBEAT + SLACK_S, f"offline shown after {took:.1f} s"
    card.locator("[data-field=state]:text-is('online')").wait_for(
        timeout=(2 * HEARTBEAT + 10) * 1000)
    # killed: its socket closes, the broker publishes its last will at once
    north.send_signal(signal.SIGKILL)
    t0 = time.monotonic()
    offline.wait_for(timeout=(2 * HEARTBEAT + 10) * 1000)
    took = time.monotonic() - t0
    assert took <= 2 * HEARTBEAT + SLACK_S, f"offline shown after {took:.1f} s"
    assert nodes.evaluate("window.__same_page") is True  # updated live, not reloaded
    assert "offline" in (card.get_attribute("class") or "")
    assert "1 of 2 online" in nodes.locator("#node-count").inner_text()
    assert TOKEN not in nodes.content()
    assert not errors, errors
    context.close()


def _rows(page) -> list[tuple[str, str]]:  # noqa: ANN001
    page.wait_for_selector("table.events, p.empty")
    out = []
    for tr in page.locator("table.events tbody tr").all():
        out.append((tr.locator(".plate").first.inner_text().strip(),
                    tr.locator("td[data-field=node]").inner_text().strip()))
    return out
