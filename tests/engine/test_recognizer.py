"""The real models on real labelled images from ../shared/evaldata."""

import json
from pathlib import Path

import numpy as np
import pytest

from engine import Box, EngineConfigError, Recognizer, read_image_file
from engine.geometry import coverage, iou
from engine.vehicles import VEHICLE_TYPES
from engine.vehicles import color as vehicle_color
from stream.wire import snapshot_response

API_EXAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "api_examples"


def box_iou(a: Box, b: dict) -> float:
    return float(iou(a.xyxy, [(b["xmin"], b["ymin"], b["xmax"], b["ymax"])])[0])


def test_detector_matches_known_model_output(square_recognizer, recognizer, eu1):
    """models README: eu1.jpg detector box (388,338)-(603,390), score 0.889 (the exported
    416x416 input); the input fitted to the image's aspect finds the same plate."""
    dets = square_recognizer.plates.detect(eu1, 0.25)
    assert dets.xyxy[0] == pytest.approx([388, 338, 603, 390], abs=1.5)
    assert dets.score[0] == pytest.approx(0.889, abs=0.005)
    fitted = recognizer.plates.detect(eu1, 0.25)
    assert fitted.xyxy[0] == pytest.approx([388, 338, 603, 390], abs=3)
    assert fitted.score[0] == pytest.approx(0.889, abs=0.02)


def test_vehicle_detector_matches_known_model_output(recognizer, eu1):
    """models README: eu1.jpg YOLOX sees a truck 0.69 (car 0.38 on the same vehicle)."""
    dets = recognizer.vehicles.detect(eu1, 0.3)
    assert dets.class_id[0] == 7 and dets.score[0] == pytest.approx(0.69, abs=0.01)


@pytest.mark.parametrize(
    "image, regions",
    [
        ("images/eu/eu1.jpg", ()),
        ("images/us/0b86cecf-67d1-4fc0-87c9-b36b0ee228bb.jpg", ("us",)),
        ("images/br/PAG5219.png", ("br",)),  # RGBA PNG
        ("images/br/OZK6717.jpg", ("br",)),
    ],
)
def test_known_images_read_right(recognizer, evaldata, endtoend, image, regions):
    row = next(r for r in endtoend if r["image"] == image)
    gt = row["plates"][0]
    res = recognizer.recognize(read_image_file(str(evaldata / image)), regions)
    best = max(res.results, key=lambda r: box_iou(r.box, gt["box"]))
    assert best.plate == gt["text"].lower()
    assert box_iou(best.box, gt["box"]) >= 0.5
    assert (res.image_width, res.image_height) == (row["width"], row["height"])
    assert 0.5 < best.score <= 1 and 0.25 <= best.dscore <= 1
    assert best.candidates[0].plate == best.plate
    assert best.vehicle is not None and best.vehicle.type in VEHICLE_TYPES
    s, v = int(0.2 * best.box.width), best.vehicle.box  # the vehicle holds the plate, +- s px
    assert coverage(best.box.xyxy, [(v.xmin - s, v.ymin - s, v.xmax + s, v.ymax + s)])[0] == 1


def test_region_hint_gives_state_code(recognizer, evaldata):
    img = read_image_file(str(evaldata / "images/us/0b86cecf-67d1-4fc0-87c9-b36b0ee228bb.jpg"))
    res = recognizer.recognize(img, ["us-ca"])
    assert res.results[0].region.code == "us-ca"
    assert recognizer.recognize(img).results[0].region.code == "us"


def test_snapshot_shape_matches_golden_keys(recognizer, eu1):
    golden = json.loads((API_EXAMPLES / "snapshot_cloud_plate_reader_response.json").read_text())
    plain = snapshot_response(recognizer.recognize(eu1))
    assert set(golden) <= set(plain)
    g_result = set(golden["results"][0]) - {"model_make", "color", "orientation"}
    assert set(plain["results"][0]) == g_result
    assert set(plain["results"][0]["vehicle"]) == {"score", "type", "box"}
    mmc = snapshot_response(recognizer.recognize(eu1, mmc=True))["results"][0]
    assert set(golden["results"][0]) <= set(mmc)
    # No make/model or orientation model ships: Plate Recognizer's "unknown" entries, never
    # empty lists (clients index [0]) and never an invented make.
    assert mmc["model_make"] == [{"make": "generic", "model": "Unknown", "score": 0}]
    assert mmc["orientation"] == [{"orientation": "Unknown", "score": 0}]
    assert mmc["color"][0]["color"] in (*vehicle_color.COLORS, "unknown")  # never an empty list
    json.dumps(mmc)  # serialisable as is


def test_config_keys(recognizer, eu1):
    assert recognizer.recognize(eu1, config={"threshold_d": 0.95}).results == ()
    assert recognizer.recognize(eu1, config={"threshold_o": 1.0}).results == ()
    fast = recognizer.recognize(eu1, config={"mode": "fast"}).results[0]
    assert fast.plate == "m5xsx" and fast.vehicle is None and len(fast.candidates) == 1
    # eu1's vanity plate fits no German format: strict region drops it
    assert recognizer.recognize(eu1, ["de"], config={"region": "strict"}).results == ()
    assert len(recognizer.recognize(eu1, ["de"]).results) == 1


def test_detection_rule_strict_drops_plates_outside_vehicles(recognizer, eu1):
    # a plate pasted onto a blank canvas has no vehicle around it
    canvas = np.full((600, 800, 3), 255, np.uint8)
    canvas[250:310, 250:470] = eu1[335:395, 385:605]
    loose = recognizer.recognize(canvas)
    assert [r.plate for r in loose.results] == ["m5xsx"] and loose.results[0].vehicle is None
    assert recognizer.recognize(canvas, config={"detection_rule": "strict"}).results == ()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"config": {"threshold_x": 1}}, r"config.threshold_x: unknown key \(did you mean"),
        ({"config": {"threshold_d": 2}}, r"config.threshold_d: must be within 0..1"),
        ({"config": {"mode": "slow"}}, r"config.mode: expected one of normal, fast"),
        ({"config": "{bad json"}, r"config: not valid JSON"),
        ({"config": "[1]"}, r"config: expected a JSON object"),
        ({"regions": ["xx-yy"]}, r"unknown region code 'xx-yy'"),
    ],
)
def test_bad_settings_name_the_key(recognizer, eu1, kwargs, match):
    with pytest.raises(EngineConfigError, match=match):
        recognizer.recognize(eu1, **kwargs)


def test_batch_equals_single(recognizer, evaldata, eu1):
    other = read_image_file(str(evaldata / "images/eu/eu2.jpg"))
    batch = recognizer.recognize_batch([eu1, other, eu1])
    single = [recognizer.recognize(i) for i in (eu1, other)]
    assert [r.results[0].plate for r in batch] == ["m5xsx", "gwagen", "m5xsx"]
    assert batch[1].results[0].box == single[1].results[0].box


def test_no_vehicle_model_still_reads(models_dir, eu1):
    rec = Recognizer.from_models_dir(models_dir, threads=1, vehicles=False, precision="fp32")
    res = snapshot_response(rec.recognize(eu1))
    assert res["results"][0]["plate"] == "m5xsx"
    assert res["results"][0]["vehicle"] == {
        "score": 0.0, "type": "Unknown", "box": {"xmin": 0, "ymin": 0, "xmax": 0, "ymax": 0}
    }
