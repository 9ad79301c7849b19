import multiprocessing as mp
import os
import signal

import pytest

from stream.delivery import Spool


def test_put_due_ack_counts(tmp_path):
    spool = Spool(tmp_path / "s.db")
    spool.put(["a", "b"], "ev1", {"x": 1}, b"img", "car.jpg")
    spool.put(["a"], "ev2", {"x": 2})
    items = spool.due("a")
    assert [i.event_id for i in items] == ["ev1", "ev2"]
    assert items[0].payload == {"x": 1} and items[0].attachment == b"img"
    spool.ack(items[0].id)
    assert spool.counts("a") == {"pending": 1, "failed": 0, "delivered": 1}
    assert spool.counts("b")["pending"] == 1
    spool.retry(items[1].id, "boom", next_at=1e12)
    assert spool.due("a") == []  # not due before its retry time
    spool.retry(items[1].id, "boom", next_at=0, give_up=True)
    assert spool.counts("a")["failed"] == 1
    spool.close()


def _writer(path, n, ready):
    spool = Spool(path)
    for i in range(n):
        spool.put(["out"], f"ev{i}", {"i": i})
        if i == n // 2:
            ready.set()
    ready.set()
    signal.pause()  # wait to be killed


def test_put_survives_kill_9(tmp_path):
    """Rows committed before a kill -9 are all there afterwards."""
    path = tmp_path / "s.db"
    ctx = mp.get_context("fork")
    ready = ctx.Event()
    proc = ctx.Process(target=_writer, args=(path, 200, ready))
    proc.start()
    assert ready.wait(30)
    proc.join(0.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(10)
    got = Spool(path).due("out", limit=1000)
    ids = [int(i.event_id[2:]) for i in got]
    assert len(ids) >= 101 and ids == list(range(len(ids)))  # a prefix, none missing


@pytest.mark.parametrize("kwargs", [{"backoff_initial": 0}, {"max_attempts": 0}])
def test_worker_rejects_bad_arguments(tmp_path, kwargs):
    from stream.delivery import DeliveryWorker

    with pytest.raises(ValueError, match="deliver:x"):
        DeliveryWorker(Spool(tmp_path / "s.db"), "x", lambda item: None, **kwargs)
