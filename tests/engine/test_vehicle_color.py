"""Vehicle colour from pixels (engine/vehicles/color.py) on real labelled vehicles and edges."""

import json
import math

import numpy as np
import pytest

from engine import read_image_file
from engine.result import ColorScore
from engine.vehicles import color
from tests.conftest import ROOT

# Hand-labelled development vehicles (scripts/data/vehicle_colors_dev.jsonl) of clear colours,
# from all three regions and from front and rear views.
KNOWN = {
    "images/br/OKP7250.jpg": "red",
    "images/us/car22.jpg": "red",
    "images/eu/test_086.jpg": "red",
    "images/eu/test_016.jpg": "blue",
    "images/us/car13.jpg": "blue",
    "images/br/OKM2371.jpg": "black",
    "images/br/PJJ4955.jpg": "black",
    "images/br/OZR2224.jpg": "white",
    "images/us/wts-lg-000098.jpg": "white",
    "images/eu/test_085.jpg": "white",
    "images/br/OUN4297.jpg": "silver",
}


@pytest.fixture(scope="module")
def labelled(evaldata, endtoend):
    plates = {row["image"]: row["plates"][0]["box"] for row in endtoend}
    with open(ROOT / "scripts/data/vehicle_colors_dev.jsonl") as f:
        rows = {r["image"]: r for r in map(json.loads, f)}
    return {
        image: (read_image_file(evaldata / image), rows[image]["box"], plates[image])
        for image in KNOWN
    }


def test_the_labels_use_plate_recognizer_colour_names():
    with open(ROOT / "scripts/data/vehicle_colors_dev.jsonl") as f:
        rows = [json.loads(line) for line in f]
    assert len(rows) >= 150
    assert {r["color"] for r in rows} <= set(color.COLORS)
    assert all(KNOWN[r["image"]] == r["color"] for r in rows if r["image"] in KNOWN)


@pytest.mark.parametrize("image", sorted(KNOWN))
def test_known_colour_vehicles_are_classified_right(labelled, image):
    img, box, plate = labelled[image]
    with_plate = color.estimate(img, box, plate)
    box_only = color.estimate(img, box)
    assert with_plate[0][0] == KNOWN[image], with_plate
    assert box_only[0][0] == KNOWN[image], box_only


def test_scores_are_probabilities_best_first(labelled):
    img, box, plate = labelled["images/us/car22.jpg"]
    every = color.estimate(img, box, plate, top=len(color.COLORS))
    assert [c for c, _ in every] != [] and len(every) == len(color.COLORS)
    assert {c for c, _ in every} == set(color.COLORS)
    scores = [s for _, s in every]
    assert scores == sorted(scores, reverse=True)
    assert all(0 <= s <= 1 for s in scores) and math.isclose(sum(scores), 1, abs_tol=1e-6)
    assert len(color.estimate(img, box, plate)) == 3


def synthetic(bgr):
    """A grey street with a solid-colour body 440 x 300 and a white plate on it."""
    img = np.full((480, 640, 3), 110, np.uint8)
    img[100:400, 100:540] = bgr
    img[300:330, 280:360] = 235
    return img, (100, 100, 540, 400), (280, 300, 360, 330)


@pytest.mark.parametrize("name, bgr", [
    ("red", (30, 30, 200)), ("blue", (180, 60, 20)), ("green", (40, 140, 30)),
    ("yellow", (20, 220, 230)), ("orange", (0, 120, 240)), ("black", (20, 20, 20)),
])
def test_a_solid_colour_body_is_named_by_its_colour(name, bgr):
    img, box, plate = synthetic(bgr)
    assert color.estimate(img, box, plate)[0][0] == name
    assert color.estimate(img, box)[0][0] == name


UNKNOWN = ((color.UNKNOWN, 0.0),)


@pytest.mark.parametrize("box", [
    (100, 100, 100, 300),      # zero width
    (100, 100, 300, 100),      # zero height
    (300, 300, 100, 100),      # inverted
    (-500, -400, -10, -10),    # wholly off-frame, above-left
    (700, 500, 900, 800),      # wholly off-frame, below-right
    (638, 100, 900, 300),      # 2 pixels left in the frame
    (float("nan"), 0, 10, 10),
    (0, 0, float("inf"), 10),
    (), (1, 2), "box", None, {"xmin": 1}, object(),
])
def test_degenerate_boxes_answer_unknown_and_never_raise(box):
    img, _, plate = synthetic((30, 30, 200))
    assert color.estimate(img, box, plate) == UNKNOWN
    assert color.estimate(img, box) == UNKNOWN


def test_partly_off_frame_boxes_and_odd_plates_still_estimate():
    img, _, plate = synthetic((30, 30, 200))
    assert color.estimate(img, (-200, -100, 600, 420), plate)[0][0] == "red"
    for odd_plate in [(0, 0, 0, 0), (-90, -90, -10, -10), (900, 900, 990, 990), "x", (1,)]:
        got = color.estimate(img, (100, 100, 540, 400), odd_plate)
        assert got[0][0] == "red", odd_plate


@pytest.mark.parametrize("image", [
    np.zeros((0, 0, 3), np.uint8), np.zeros((10, 10), np.uint8), np.zeros((5, 5, 4), np.uint8),
    np.zeros((40, 40, 3), np.float32), np.zeros((3,), np.uint8), None,
])
def test_odd_images_never_raise(image):
    got = color.estimate(image, (0, 0, 40, 40))
    assert got == UNKNOWN or got[0][0] in color.COLORS


def test_color_scores_follow_the_ship_decision(labelled, monkeypatch):
    img, box, plate = labelled["images/us/car22.jpg"]
    monkeypatch.setattr(color, "SHIPPED", False)
    assert color.color_scores(img, box, plate) == (ColorScore("unknown", 0.0),)
    monkeypatch.setattr(color, "SHIPPED", True)
    got = color.color_scores(img, box, plate)
    assert got[0].color == "red" and 0 < got[0].score <= 1 and len(got) == 3
    assert color.color_scores(img, None, plate) == (ColorScore("unknown", 0.0),)


def test_the_note_says_whether_it_ships_and_why():
    assert "scripts/eval_colors.py" in color.NOTE and "80%" in color.NOTE
    assert ("unknown" in color.NOTE) is (not color.SHIPPED)


def the_labelled_read(recognition, plate):
    """The read of the labelled plate (other cars' plates may be read too)."""
    cx, cy = (plate["xmin"] + plate["xmax"]) / 2, (plate["ymin"] + plate["ymax"]) / 2
    return next(r for r in recognition.results
                if r.box.xmin <= cx <= r.box.xmax and r.box.ymin <= cy <= r.box.ymax)


def test_recognizer_mmc_color_is_never_empty(recognizer, labelled, monkeypatch):
    img, _, plate = labelled["images/us/car22.jpg"]
    reads = recognizer.recognize(img, mmc=True).results
    assert len(reads) >= 2  # the other car's plate is read too
    for read in reads:
        assert len(read.color) >= 1
        assert color.SHIPPED or read.color == (ColorScore("unknown", 0.0),)
    assert all(r.color is None for r in recognizer.recognize(img, mmc=False).results)
    assert recognizer.capabilities()["color"] == color.NOTE
    # shipped, the recognizer answers the estimate for the plate's own vehicle
    monkeypatch.setattr(color, "SHIPPED", True)
    read = the_labelled_read(recognizer.recognize(img, mmc=True), plate)
    assert read.vehicle is not None and read.color[0].color == "red"
