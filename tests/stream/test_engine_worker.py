"""EngineWorker with the real Recognizer on real images."""

import threading

import pytest

from engine import EngineConfigError, read_image_file
from stream.engine_worker import EngineBusy, EngineWorker
from stream.wire import snapshot_response


@pytest.fixture(scope="module")
def images(evaldata):
    return [read_image_file(str(evaldata / "images/eu" / n)) for n in ("eu1.jpg", "eu2.jpg")]


def test_concurrent_submits_share_batches(recognizer, images):
    with EngineWorker(recognizer, max_batch=8, batch_window_ms=200) as worker:
        futures = [worker.submit(images[i % 2]) for i in range(6)]
        results = [f.result(60) for f in futures]
        stats = worker.stats()
    assert [r.results[0].plate for r in results[:2]] == ["m5xsx", "gwagen"]
    assert stats["processed"] == 6
    assert stats["batches"] < 6  # jobs submitted together were batched


def test_different_settings_are_not_mixed(recognizer, images):
    with EngineWorker(recognizer, batch_window_ms=100) as worker:
        a = worker.submit(images[0], config={"mode": "fast"})
        b = worker.submit(images[0], mmc=True)
        ra, rb = a.result(60), b.result(60)
    assert ra.results[0].vehicle is None and ra.results[0].color is None
    assert rb.results[0].vehicle is not None and len(rb.results[0].color) >= 1


def test_full_queue_raises_busy_and_bad_config_raises_early(recognizer, images):
    worker = EngineWorker(recognizer, max_queue=2)  # not started: nothing drains the queue
    worker.submit(images[0])
    worker.submit(images[0])
    with pytest.raises(EngineBusy):
        worker.submit(images[0])
    assert worker.stats()["rejected"] == 1
    with pytest.raises(EngineConfigError, match="config.nope"):
        worker.submit(images[0], config={"nope": 1})
    worker.stop()


def test_stop_cancels_waiting_jobs_and_ends_thread(recognizer, images):
    worker = EngineWorker(recognizer)
    fut = worker.submit(images[0])
    worker.stop()
    assert fut.cancelled()
    worker.start()
    threads = list(worker._threads)
    assert len(threads) == 1 and threads[0].is_alive()
    worker.stop()
    assert not any(t.is_alive() or t in threading.enumerate() for t in threads)


def test_two_workers_give_the_same_results_in_parallel(recognizer, images):
    with EngineWorker(recognizer, workers=2, max_batch=1, batch_window_ms=0) as worker:
        names = {t.name for t in worker._threads}
        futures = [worker.submit(images[i % 2]) for i in range(8)]
        results = [f.result(120) for f in futures]
        stats = worker.stats()
    assert names == {"engine-0", "engine-1"}
    expected = [snapshot_response(recognizer.recognize(im))["results"] for im in images]
    for i, r in enumerate(results):
        assert snapshot_response(r)["results"] == expected[i % 2]
    assert stats["processed"] == 8 and stats["batches"] == 8 and stats["workers"] == 2


def test_jobs_set_aside_by_a_worker_are_run_not_lost(recognizer, images):
    # Alternating settings force each worker to set jobs aside in its own pending list.
    with EngineWorker(recognizer, workers=2, batch_window_ms=50) as worker:
        futures = [worker.submit(images[0], mmc=bool(i % 2)) for i in range(6)]
        results = [f.result(120) for f in futures]
    assert [r.results[0].plate for r in results] == ["m5xsx"] * 6
    assert [r.results[0].color is not None for r in results] == [False, True] * 3


def test_bad_worker_count_is_refused(recognizer):
    with pytest.raises(ValueError, match="workers"):
        EngineWorker(recognizer, workers=0)


def test_queued_pixels_are_bounded_but_one_image_always_fits(recognizer, images):
    big = images[0]
    pixels = big.shape[0] * big.shape[1]
    worker = EngineWorker(recognizer, max_pixels=pixels + 10)  # not started: jobs stay queued
    first = worker.submit(big)  # alone: accepted even when larger than the budget would allow
    with pytest.raises(EngineBusy, match="Mpx"):
        worker.submit(big)
    small = big[:4, :2]
    worker.submit(small)  # fits in what is left
    assert worker.stats()["rejected"] == 1 and worker.stats()["queued"] == 2
    worker.stop()  # cancelled jobs give their pixels back
    assert first.cancelled() and worker.stats()["queued_mpx"] == 0
    huge_alone = EngineWorker(recognizer, max_pixels=1)
    with huge_alone:
        assert huge_alone.submit(big).result(60).results[0].plate == "m5xsx"
        assert huge_alone.submit(big).result(60) is not None  # the first is done: room again
