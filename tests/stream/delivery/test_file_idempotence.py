"""CSV/JSONL outputs are exactly-once across kill -9 (issue 13): the spool redelivers what
was not acked, the file's journal says whether it is already there; and the opt-in
``event_id`` CSV column."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from stream.delivery import Spool
from stream.sinks import CsvSink
from stream.wire import CSV_HEADER
from tests.stream.test_events import sample_event

ROOT = Path(__file__).resolve().parents[3]


def _payload(i: int) -> dict:
    data = sample_event().data
    data["event_id"] = f"ev-{i:05d}"
    data["results"][0]["plate"] = f"abc{i:05d}"
    return data


def test_a_redelivered_item_is_written_once_and_a_torn_write_is_repaired(tmp_path):
    spool = Spool(tmp_path / "spool.sqlite")
    spool.put(["csv"], "ev-00001", _payload(1))
    spool.put(["csv"], "ev-00002", _payload(2))
    first, second = spool.due("csv")
    with CsvSink("events.csv", tmp_path) as sink:
        sink(first)  # written; "killed" before the ack
    with CsvSink("events.csv", tmp_path) as sink:  # restarted: the spool redelivers it
        sink(first)
        sink(second)
    path = tmp_path / "events.csv"
    rows = list(csv.reader(path.open()))
    assert [r[1] for r in rows[1:]] == ["abc00001", "abc00002"], rows
    # Killed in the middle of writing the second row: the cut row is replaced, whole.
    size = path.stat().st_size
    os.truncate(path, size - 7)
    with CsvSink("events.csv", tmp_path) as sink:
        sink(second)
    assert path.stat().st_size == size
    assert [r[1] for r in csv.reader(path.open())][1:] == ["abc00001", "abc00002"]


def test_csv_event_id_column_is_opt_in(tmp_path):
    spool = Spool(tmp_path / "spool.sqlite")
    spool.put(["csv"], "ev-00007", _payload(7))
    (item,) = spool.due("csv")
    with CsvSink("pr.csv", tmp_path) as a, CsvSink("id.csv", tmp_path,
                                                    columns="pr+event_id") as b:
        a(item)
        b(item)
    pr = list(csv.reader((tmp_path / "pr.csv").open()))
    with_id = list(csv.reader((tmp_path / "id.csv").open()))
    assert tuple(pr[0]) == CSV_HEADER and len(pr[1]) == 15
    assert with_id[0] == [*CSV_HEADER, "event_id"] and with_id[1][:15] == pr[1]
    assert with_id[1][15] == "ev-00007"


CHILD = """
import sys, time
from pathlib import Path
from stream.delivery import DeliveryWorker, Spool
from stream.sinks import CsvSink, JsonlSink
out = Path(sys.argv[1])
spool = Spool(out / "spool.sqlite")
workers = [DeliveryWorker(spool, "csv", CsvSink("events.csv", out)),
           DeliveryWorker(spool, "jsonl", JsonlSink("events.jsonl", out))]
for w in workers:
    w.start()
print("up", flush=True)
while True:
    time.sleep(1)
"""


def test_kill_9_during_delivery_duplicates_no_row(tmp_path):
    n = 200
    spool = Spool(tmp_path / "spool.sqlite")
    for i in range(n):
        spool.put(["csv", "jsonl"], f"ev-{i:05d}", _payload(i))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    kills = 0
    for _ in range(60):  # bounded: each round delivers some rows, then kill -9
        if not spool.counts("csv")["pending"] and not spool.counts("jsonl")["pending"]:
            break
        proc = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path)], env=env,
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "up"
        time.sleep(0.05 + 0.05 * (kills % 4))
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        kills += 1
    assert not spool.counts("csv")["pending"] and not spool.counts("jsonl")["pending"]
    assert kills >= 3, kills  # the rows really went out across several kills
    csv_ids = [r[1] for r in csv.reader((tmp_path / "events.csv").open())][1:]
    jsonl_ids = [json.loads(line)["event_id"]
                 for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    expected_plates = [f"abc{i:05d}" for i in range(n)]
    assert csv_ids == expected_plates
    assert jsonl_ids == [f"ev-{i:05d}" for i in range(n)]
