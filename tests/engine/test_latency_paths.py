"""What makes one image quicker without changing its read: the OCR keeps a sure one-view read
(engine/ocr/model.py ``sure``) and the vehicle detector runs beside the plate detector
(Recognizer.overlap). Real models, development images."""

from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest

from engine.geometry import crop
from engine.ocr.two_line import TWO_LINE_MAX_ASPECT
from engine.recognizer import OCR_VIEWS

IMAGES = [f"images/us/car{n}.jpg" for n in (1, 3, 6, 8, 12, 13, 15, 17, 19, 22)] + [
    "images/us/wts-lg-000012.jpg", "images/eu/eu1.jpg", "images/br/AYO9034.jpg"]


@pytest.fixture(scope="module")
def plates(recognizer, evaldata):
    """(crops of all views, two-line flags) of every plate found on IMAGES."""
    crops, square = [], []
    for name in IMAGES:
        img = cv2.imread(str(evaldata / name))
        assert img is not None, name
        for x1, y1, x2, y2 in recognizer.plates.detect(img).xyxy:
            crops += [crop(img, (x1, y1, x2, y2), px, py) for px, py in OCR_VIEWS]
            square.append((x2 - x1) < TWO_LINE_MAX_ASPECT * (y2 - y1))
    return crops, square


def test_sure_first_keeps_a_sure_one_view_read_and_reads_the_others_from_all_views(
        recognizer, plates):
    crops, square = plates
    views = len(OCR_VIEWS)
    ocr = recognizer.ocr
    one = ocr.read(crops[::views])
    every = ocr.read_plates(crops, square, views=views)
    scores = sorted(r.score for r, flag in zip(one, square, strict=True) if not flag)
    sure = scores[len(scores) // 2]  # half the one-line plates are sure, half are not
    got = ocr.read_plates(crops, square, views=views, sure=sure)
    kept = reread = 0
    for a, b, c, flag in zip(got, one, every, square, strict=True):
        if not flag and b.score >= sure:
            assert (a.text, a.score) == (b.text, b.score)
            np.testing.assert_array_equal(a.probs, b.probs)
            kept += 1
        else:
            assert (a.text, a.score, a.candidates) == (c.text, c.score, c.candidates)
            np.testing.assert_array_equal(a.probs, c.probs)
            reread += 1
    assert kept >= 3 and reread >= 3, (kept, reread)
    # the views disagree somewhere, or the test could not tell the two paths apart
    assert any(not np.array_equal(b.probs, c.probs) for b, c in zip(one, every, strict=True))


def test_sure_first_without_plates_or_with_only_two_line_ones(recognizer, plates):
    crops, square = plates
    views = len(OCR_VIEWS)
    assert recognizer.ocr.read_plates([], [], views=views, sure=0.9) == []
    got = recognizer.ocr.read_plates(crops[:views], [True], views=views, sure=0.0)
    want = recognizer.ocr.read_plates(crops[:views], [True], views=views)
    assert [(r.text, r.score) for r in got] == [(r.text, r.score) for r in want]


@pytest.fixture
def where_vehicles_run(recognizer, monkeypatch):
    """The names of the threads the vehicle detector ran on, in order."""
    threads: list[str] = []
    detect = recognizer.vehicles.detect

    def spy(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return detect(*args, **kwargs)

    monkeypatch.setattr(recognizer.vehicles, "detect", spy)
    return threads


@pytest.mark.parametrize("name", IMAGES[:4] + IMAGES[-3:])
def test_vehicles_beside_the_plates_give_the_same_recognition(recognizer, evaldata, name,
                                                              where_vehicles_run, monkeypatch):
    img = cv2.imread(str(evaldata / name))
    assert recognizer.overlap  # ONNX Runtime with 2 threads
    beside = recognizer.recognize(img, mmc=True)
    monkeypatch.setattr(recognizer, "overlap", False)
    in_turn = recognizer.recognize(img, mmc=True)
    assert where_vehicles_run[0].startswith("vehicles")
    assert where_vehicles_run[1] == threading.current_thread().name
    assert beside.results and [r.vehicle for r in beside.results] == [
        r.vehicle for r in in_turn.results]
    assert [(r.plate, r.box, r.candidates, r.color) for r in beside.results] == [
        (r.plate, r.box, r.candidates, r.color) for r in in_turn.results]


def test_no_plate_no_vehicle_and_batches_keep_the_detectors_in_turn(
        recognizer, evaldata, where_vehicles_run):
    blank = np.full((480, 640, 3), 127, np.uint8)
    assert recognizer.recognize(blank).results == ()  # the vehicle work beside is dropped
    assert len(where_vehicles_run) == 1 and where_vehicles_run[0].startswith("vehicles")
    img = cv2.imread(str(evaldata / IMAGES[0]))
    where_vehicles_run.clear()
    assert all(r.results for r in recognizer.recognize_batch([img, img]))
    assert where_vehicles_run == [threading.current_thread().name] * 2
    # vehicle mode reports vehicles without a plate too: what was found beside is used
    where_vehicles_run.clear()
    assert recognizer.recognize(blank, config={"detection_mode": "vehicle"}).vehicles == ()
    assert len(where_vehicles_run) == 1 and where_vehicles_run[0].startswith("vehicles")
