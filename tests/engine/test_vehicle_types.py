"""vehicle.type: the COCO mapping, and the close-up truck recheck that mmc turns on."""

import numpy as np
import pytest

from engine import read_image_file
from engine.types import Detections
from engine.vehicles.model import recheck_closeup_trucks

TRUCK, CAR, BUS = 7, 2, 5


def dets(*rows):
    return Detections(np.array([r[:4] for r in rows], np.float32).reshape(-1, 4),
                      np.full(len(rows), 0.9, np.float32), np.array([r[4] for r in rows], np.int32))


class FarDetector:
    """Stands in for the model on the zoomed-out canvas: answers with fixed boxes, given in
    the original frame's pixels, shifted to where the canvas puts them."""

    def __init__(self, *rows):
        self.rows, self.calls = rows, []

    def __call__(self, canvas, threshold):
        self.calls.append(canvas.shape)
        h, w = canvas.shape[0] / 1.5, canvas.shape[1] / 1.5
        y0, x0 = (canvas.shape[0] - int(h)) // 2, (canvas.shape[1] - int(w)) // 2
        return dets(*[(r[0] + x0, r[1] + y0, r[2] + x0, r[3] + y0, r[4]) for r in self.rows])


FRAME = np.zeros((100, 200, 3), np.uint8)


def test_small_trucks_are_left_alone_without_a_second_run():
    far = FarDetector((10, 10, 60, 60, CAR))
    got = recheck_closeup_trucks(far, FRAME, dets((10, 10, 60, 60, TRUCK)), 0.3)  # 12 % of frame
    assert got.class_id.tolist() == [TRUCK] and far.calls == []


def test_a_closeup_truck_seen_as_a_car_from_afar_is_a_car():
    far = FarDetector((22, 8, 182, 92, CAR))
    got = recheck_closeup_trucks(far, FRAME, dets((20, 10, 180, 90, TRUCK), (0, 0, 10, 10, CAR)),
                                 0.3)
    assert got.class_id.tolist() == [CAR, CAR]
    assert far.calls == [(150, 300, 3)]  # one run, on a canvas 1.5x the frame


@pytest.mark.parametrize("far_rows", [[(22, 8, 182, 92, BUS)], [(120, 50, 200, 100, CAR)], []])
def test_a_closeup_truck_stays_a_truck_without_a_matching_car(far_rows):
    got = recheck_closeup_trucks(FarDetector(*far_rows), FRAME, dets((20, 10, 180, 90, TRUCK)),
                                 0.3)
    assert got.class_id.tolist() == [TRUCK]


@pytest.mark.parametrize("image", ["images/us/car13.jpg", "images/eu/test_007.jpg",
                                   "images/br/NTV0498.jpg"])
def test_closeup_sedans_are_sedans_with_mmc(recognizer, evaldata, image):
    """Hand-labelled sedans (scripts/data/vehicle_types_dev.jsonl) the detector calls trucks."""
    img = read_image_file(str(evaldata / image))
    plain = [p.vehicle.type for p in recognizer.recognize(img).results if p.vehicle]
    mmc = [p.vehicle.type for p in recognizer.recognize(img, mmc=True).results if p.vehicle]
    assert plain == ["Big Truck"] and mmc == ["Sedan"]
