"""Two-line (square) plates, made from real US plate crops (scripts/eval_accuracy.py)."""

import dataclasses
import importlib
import json

import cv2
import numpy as np
import pytest

from engine import read_image_file
from engine.ocr.two_line import join_rows, row_crops

two_line_plate = importlib.import_module("scripts.eval_accuracy").two_line_plate
TEXTS = ["6A5730A", "26A178N", "47A434F", "9A9990A"]


@pytest.fixture(scope="module")
def plates(evaldata):
    crops = {}
    with open(evaldata / "crops.jsonl") as f:
        for line in f:
            row = json.loads(line)
            crops.setdefault(row["text"], row)
    return {t: two_line_plate(read_image_file(str(evaldata / crops[t]["image"])), t)
            for t in TEXTS}


def test_rows_read_apart_fix_two_line_plates(recognizer, plates):
    ocr = recognizer.ocr
    crops = [plates[t] for t in TEXTS]
    whole = [r.text for r in ocr.read(crops)]
    rows = ocr.read_plates(crops, [True] * len(crops))
    assert [r.text for r in rows] == TEXTS
    assert sum(w != t for w, t in zip(whole, TEXTS, strict=True)) >= 2  # the old way fails
    for r in rows:
        assert len(r.char_scores) == len(r.text) and 0 < r.score <= 1
        assert r.candidates[0] == (r.text, pytest.approx(r.score))


def test_one_line_plates_keep_their_read(recognizer, evaldata):
    with open(evaldata / "crops.jsonl") as f:
        rows = [json.loads(line) for line in f][:30]
    crops = [read_image_file(str(evaldata / r["image"])) for r in rows]
    plain = recognizer.ocr.read(crops)
    flagged = recognizer.ocr.read_plates(crops, [True] * len(crops))
    truth = [r["text"].replace("O", "0") for r in rows]
    exact = lambda reads: sum(r.text.replace("O", "0") == t for r, t in zip(reads, truth, strict=True))  # noqa: E501, E731
    assert exact(flagged) >= exact(plain) >= 25


def test_join_keeps_the_more_probable_read(recognizer, evaldata, plates):
    ocr = recognizer.ocr
    crop = read_image_file(str(evaldata / "crops/us/ak399.png"))  # one line: FGJ235
    (whole,) = ocr.read([crop])
    top, bottom = ocr.read(list(row_crops(crop, ocr.cfg)))
    assert whole.text == "FGJ235" and whole.score > top.score * bottom.score
    assert join_rows(whole, top, bottom, ocr.cfg) is whole
    assert join_rows(dataclasses.replace(whole, score=0.0), whole, whole, ocr.cfg).text == \
        "FGJ235"  # 12 characters do not fit 10 slots: the whole read stays

    square = plates["6A5730A"]
    (whole,) = ocr.read([square])
    top, bottom = ocr.read(list(row_crops(square, ocr.cfg)))
    joined = join_rows(whole, top, bottom, ocr.cfg)
    assert joined.text == top.text + bottom.text == "6A5730A"
    assert joined.score == pytest.approx(top.score * bottom.score)
    assert joined.score > whole.score
    assert joined.region == whole.region  # the region head saw the whole plate


@pytest.mark.parametrize("image", ["bb7a38e4", "us/us8.jpg"])
def test_recognizer_reads_a_two_line_plate_in_a_scene(recognizer, square_recognizer, plates,
                                                      evaldata, endtoend, image):
    if image == "us/us8.jpg":
        # On this composite the detector with the fitted (416x320) input boxes the pasted
        # 26A178N's top row only; the exported square input boxes the whole plate.
        recognizer = square_recognizer
    row = next(r for r in endtoend if image in r["image"])
    scene = read_image_file(str(evaldata / row["image"]))
    box = row["plates"][0]["box"]
    for text in TEXTS:
        img = scene.copy()  # the two-line plate replaces the car's own, a bit larger
        plate = plates[text]
        h = int((box["ymax"] - box["ymin"]) * 2.2)
        w = int(h * plate.shape[1] / plate.shape[0])
        y0 = (box["ymin"] + box["ymax"]) // 2 - h // 2
        x0 = (box["xmin"] + box["xmax"]) // 2 - w // 2
        img[y0 : y0 + h, x0 : x0 + w] = cv2.resize(plate, (w, h))
        plates_read = [p.plate for p in recognizer.recognize(img).results]
        assert text.lower() in plates_read, (text, plates_read)
        assert np.any(img != scene)
