"""The event store on SQLite and on a real PostgreSQL: upserts, searches, paging, retention."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from stream.store import EventQuery, QueryError, StoreConfig, StoreError, open_store
from tests.stream.store.conftest import event

JPEG = b"\xff\xd8\xff\xe0" + b"x" * 1000


def _plates(page) -> list[str]:
    return [e.plate for e in page.events]


def test_resend_is_an_upsert_not_a_second_row(store):
    store.put(event(1, "ab123cd"), images={"vehicle": JPEG, "plate": JPEG[:200]})
    store.put(event(1, "ab123cd"), images={"vehicle": JPEG, "plate": JPEG[:200]})
    page = store.query(EventQuery())
    assert [e.event_id for e in page.events] == ["ev-1"]
    assert store.stats()["events"] == 1
    assert store.stats()["image_bytes"] == len(JPEG) + 200
    ev = store.get("ev-1")
    assert ev.camera == "gate" and ev.region == "fr" and ev.vehicle_type == "Sedan"
    assert ev.direction == 90 and ev.score == 0.9 and ev.time.tzinfo is not None
    assert store.image_path("ev-1", "vehicle").read_bytes() == JPEG
    assert store.image_path("ev-1", "plate").stat().st_size == 200
    assert store.get("nope") is None and store.image_path("nope", "plate") is None


def test_fuzzy_plate_search_folds_look_alike_characters(store):
    for i, p in enumerate(["ab123cd", "ab123c0", "a8123cd", "ab1234d", "xy999zz", "ab12"]):
        store.put(event(i, p))
    # ratio >= 80 (repeat suppression's rule) after O/0 I/1 B/8 folding, newest first
    assert _plates(store.query(EventQuery(plate="AB-123-CD"))) == [
        "ab1234d", "a8123cd", "ab123c0", "ab123cd"]
    assert _plates(store.query(EventQuery(plate="ABI23CD"))) == [
        "ab1234d", "a8123cd", "ab123c0", "ab123cd"]
    assert _plates(store.query(EventQuery(plate="zz000zz"))) == []
    # wildcards
    assert _plates(store.query(EventQuery(plate="XY*"))) == ["xy999zz"]
    assert _plates(store.query(EventQuery(plate="*34D"))) == ["ab1234d"]
    assert len(store.query(EventQuery(plate="*")).events) == 6


def test_filters_and_cursor_paging(store):
    lst = {"list": "staff", "name": "Ann", "plate": "ab123cd", "distance": 0}
    for i in range(25):
        store.put(event(i, f"aa{i:03d}bb", camera="gate" if i % 2 else "exit",
                        known=lst if i % 5 == 0 else None))
    seen, cursor = [], None
    for _ in range(10):  # bounded
        page = store.query(EventQuery(limit=10, cursor=cursor))
        seen += [e.event_id for e in page.events]
        cursor = page.next
        if cursor is None:
            break
    assert seen == [f"ev-{i}" for i in range(24, -1, -1)]
    assert {e.camera for e in store.query(EventQuery(camera="gate", limit=100)).events} == {
        "gate"}
    since = datetime(2026, 11, 27, 8, 0, 10, tzinfo=UTC)
    until = datetime(2026, 11, 27, 8, 0, 20, tzinfo=UTC)
    got = store.query(EventQuery(since=since, until=until, limit=100)).events
    assert [e.event_id for e in got] == [f"ev-{i}" for i in range(19, 9, -1)]
    assert [e.event_id for e in store.query(EventQuery(known=True, limit=100)).events] == [
        "ev-20", "ev-15", "ev-10", "ev-5", "ev-0"]
    assert len(store.query(EventQuery(known=False, limit=100)).events) == 20
    assert len(store.query(EventQuery(known="staff", limit=100)).events) == 5
    assert store.query(EventQuery(known="banned")).events == []
    assert store.get("ev-5").known_plate == lst


def test_query_params_that_do_not_parse_name_the_parameter():
    for params, name in [({"since": "yesterday"}, "since"), ({"until": "2026-13-01"}, "until"),
                         ({"limit": "0"}, "limit"), ({"limit": "ten"}, "limit"),
                         ({"cursor": "@@@"}, "cursor"), ({"plate": "--"}, "plate"),
                         ({"colour": "red"}, "colour"),
                         ({"since": "2026-11-28", "until": "2026-11-27"}, "until")]:
        with pytest.raises(QueryError) as exc:
            EventQuery.from_params(params)
        assert exc.value.param == name, params
    q = EventQuery.from_params({"since": "2026-11-27T08:00:00Z", "until": "1795766500",
                                "known": "staff", "limit": "5"})
    assert q.since == datetime(2026, 11, 27, 8, tzinfo=UTC) and q.known == "staff"
    assert EventQuery.from_params({"known": "false"}).known is False


def test_retention_by_age_and_by_image_size(store_config, tmp_path):
    store = open_store(StoreConfig(url=store_config.url, keep_days=1, max_image_mb=0.005),
                       tmp_path / "state")
    try:
        old = datetime.fromtimestamp(time.time() - 3 * 86400, UTC).isoformat()
        # (from what put returns: the retention thread may delete the old event at once)
        old_file = store.images_dir / store.put(event(0, "old0001", ts=old),
                                                images={"vehicle": JPEG}).vehicle_image
        for i in range(1, 9):  # 8 fresh events of ~1 KB each: over the 5 KiB image budget
            now = datetime.fromtimestamp(time.time() - 100 + i, UTC).isoformat()
            store.put(event(i, f"new{i:04d}", ts=now), images={"vehicle": JPEG})
        store.enforce_retention()  # the retention thread may have been first: count both
        assert store.stats()["deleted_events"] == 1
        assert store.get("ev-0") is None and not old_file.exists()
        # the oldest fresh events lose their images but keep their rows
        assert store.stats()["deleted_images"] >= 3
        assert store.stats()["image_bytes"] <= 5 * 1024
        assert store.image_path("ev-1", "vehicle") is None and store.get("ev-1") is not None
        assert store.get("ev-1").to_json()["images"] == {"vehicle": None, "plate": None}
        assert store.image_path("ev-8", "vehicle") is not None
        assert store.stats()["events"] == 8
    finally:
        store.close()


def test_reopen_keeps_events_and_known_plates(store_config, tmp_path):
    from stream.known_plates import KnownPlate

    s = open_store(store_config, tmp_path / "state")
    s.put(event(1, "ab123cd"), images={"plate": JPEG})
    s.known_save(KnownPlate("staff", "ab123cd", "Ann", "van"))
    s.close()
    s = open_store(store_config, tmp_path / "state")
    try:
        assert s.get("ev-1").plate == "ab123cd" and s.stats()["image_bytes"] == len(JPEG)
        assert s.known_load() == [("staff", "ab123cd", "Ann", "van")]
    finally:
        s.close()


def test_unusable_store_is_one_clear_error(tmp_path):
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "events.sqlite").write_bytes(b"not a database" * 100)
    with pytest.raises(StoreError, match="store: cannot open"):
        open_store(StoreConfig(), tmp_path / "state")
    with pytest.raises(StoreError, match=r"cannot connect to postgresql://u:\*\*\*@127.0.0.1"):
        from tests.stream.helpers import free_port

        open_store(StoreConfig(url=f"postgresql://u:secret@127.0.0.1:{free_port()}/x"),
                   tmp_path)


def test_bulk_import_is_searchable_and_keeps_existing_rows(store):
    store.put(event(1, "ab123cd"), images={"plate": JPEG})
    n = store.put_many([event(i, f"bk{i:03d}zz") for i in range(2, 40)] + [event(1, "zz")])
    assert n == 39 and store.stats()["events"] == 39
    assert store.get("ev-1").plate == "ab123cd"  # already stored: left as it was
    assert _plates(store.query(EventQuery(plate="BK007Z2"))) == ["bk007zz"]


def test_ingestion_goes_on_while_retention_deletes(store_config, tmp_path):
    import threading

    store = open_store(StoreConfig(url=store_config.url, keep_days=1), tmp_path / "state")
    try:
        old = time.time() - 5 * 86400
        store.put_many([event(i, f"od{i:05d}x",
                              ts=datetime.fromtimestamp(old + i, UTC).isoformat())
                        for i in range(3000)])
        done = threading.Event()
        t = threading.Thread(target=lambda: (store.enforce_retention(), done.set()))
        t.start()
        puts = 0
        while not done.is_set() and puts < 2000:  # bounded
            store.put(event(10_000 + puts, "ab123cd", ts=datetime.now(UTC).isoformat()),
                      images={"plate": JPEG})
            puts += 1
        t.join(60)
        print(f"{puts} events stored while retention deleted 3000")
        assert done.is_set() and puts >= 1  # puts went through between retention batches
        assert store.stats()["events"] == puts
        assert store.stats()["deleted_events"] == 3000
    finally:
        store.close()
