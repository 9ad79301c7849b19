"""Detector inputs fitted to the frame's aspect (engine/backends/fitted.py) and the OCR's three
views of a plate, on the real models and development images."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest

from engine import Recognizer
from engine.backends.fitted import FittedInputs, anchor_tables, fitted_graph
from engine.backends.onnxruntime import OrtBackend
from engine.errors import ModelLoadError
from engine.geometry import crop, iou
from engine.plates import process as plates
from engine.preprocess import fitted_canvas, scaled_size
from engine.recognizer import OCR_VIEWS

PLATE = "plate_detector_yolov9t416.onnx"
VEHICLE = "vehicle_yolox_nano416.onnx"


@pytest.mark.parametrize(("h", "w", "canvas"), [
    (720, 1280, (256, 416)), (1080, 1920, (256, 416)), (1600, 900, (416, 256)),
    (480, 640, (320, 416)), (416, 416, (416, 416)), (100, 100, (416, 416)),
    (50, 400, (256, 416)), (600, 800, (320, 416)), (700, 800, (416, 416)),
    (1280, 720, (416, 256)), (640, 480, (416, 320)),
])
def test_fitted_canvas_is_the_letterboxed_image_rounded_up_to_a_few_shapes(h, w, canvas):
    assert fitted_canvas(h, w, 416) == canvas


def test_anchor_tables_of_the_square_are_the_exported_graphs(models_dir):
    import onnx
    from onnx import numpy_helper

    inits = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(models_dir / PLATE))
             .graph.initializer}
    points, strides = anchor_tables(416, 416)
    assert any(a.shape == points.shape and np.array_equal(a, points) for a in inits.values())
    assert any(a.shape == strides.shape and np.array_equal(a, strides) for a in inits.values())


def test_fitted_graph_on_the_square_gives_the_same_output(models_dir, evaldata):
    path = models_dir / PLATE
    img = cv2.imread(str(evaldata / "images/eu/eu1.jpg"))
    x, _ = plates.preprocess(img)
    want = OrtBackend(path, 1).infer({"images": x})["output0"]
    got = OrtBackend(path, 1, graph=fitted_graph(path, (416, 416))).infer({"images": x})
    np.testing.assert_array_equal(got["output0"], want)


def test_the_box_softmax_is_taken_over_the_last_axis(models_dir, evaldata):
    import onnx

    from engine.backends.fitted import softmax_on_the_last_axis

    model = onnx.load(str(models_dir / PLATE))
    ops = [n.op_type for n in model.graph.node]
    assert softmax_on_the_last_axis(model.graph) == 1
    assert ops.count("Conv") - 1 == [n.op_type for n in model.graph.node].count("Conv")
    softmax = next(n for n in model.graph.node if n.op_type == "Softmax")
    assert onnx.helper.get_attribute_value(softmax.attribute[0]) == 3
    assert softmax_on_the_last_axis(model.graph) == 0  # done once
    assert softmax_on_the_last_axis(onnx.load(str(models_dir / VEHICLE)).graph) == 0
    # the rewritten graph gives the exported one's boxes on a real image
    img = cv2.imread(str(evaldata / "images/us/wts-lg-000012.jpg"))
    x, _ = plates.preprocess(img)
    want = OrtBackend(models_dir / PLATE, 1).infer({"images": x})["output0"]
    got = OrtBackend(models_dir / PLATE, 1, graph=model.SerializeToString()).infer(
        {"images": x})["output0"]
    assert len(want) >= 1
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-3)


def test_the_fit_path_loads_the_plate_detectors_square_rewritten(models_dir, monkeypatch):
    import engine.recognizer

    made = []

    def spy(path, canvas):
        made.append((path.name, canvas))
        return fitted_graph(path, canvas)

    monkeypatch.setattr(engine.recognizer, "fitted_graph", spy)
    Recognizer.from_models_dir(models_dir, threads=1, precision="fp32", detector_input="square")
    assert made == []
    Recognizer.from_models_dir(models_dir, threads=1, precision="fp32", detector_input="fit")
    assert made == [(PLATE, (416, 416))]  # at load; the other shapes on first use


def test_models_without_a_square_input_are_refused(models_dir):
    with pytest.raises(ModelLoadError, match="not a fixed square"):
        fitted_graph(models_dir / "plate_ocr_cct_xs_v2_global.onnx", (64, 128))
    with pytest.raises(ModelLoadError, match="multiple of 32"):
        fitted_graph(models_dir / PLATE, (250, 416))


@pytest.fixture(scope="module")
def both(models_dir):
    return {d: Recognizer.from_models_dir(models_dir, threads=2, precision="fp32",
                                          detector_input=d) for d in ("square", "fit")}


@pytest.mark.parametrize("name", [
    "images/us/wts-lg-000012.jpg",  # 1280x720: a 256x416 input
    "images/us/car9-7.jpg",  # 900x1600 portrait: 416x256
    "images/eu/eu1.jpg",
    "images/br/AYO9034.jpg",
])
def test_fitted_detectors_find_the_same_plates_and_vehicles(both, evaldata, name):
    img = cv2.imread(str(evaldata / name))
    assert img is not None, name
    h, w = img.shape[:2]
    square, fit = both["square"], both["fit"]
    for det in ("plates", "vehicles"):
        a = getattr(square, det).detect(img)
        b = getattr(fit, det).detect(img)
        assert len(a) >= 1, (name, det)
        for box in a.xyxy[a.score >= 0.5]:  # every confident box is found again
            assert iou(box, b.xyxy).max() >= 0.9, (name, det, box, b.xyxy)
    # and the fitted run really used the smaller input
    canvas, session = fit.plates.fitted.for_frame(h, w)
    assert canvas == fitted_canvas(h, w, 416)
    assert session.inputs()["images"].shape[2:] == canvas


def test_square_input_and_non_onnxruntime_backends_have_no_fitted_sessions(both):
    assert both["square"].plates.fitted is None and both["square"].vehicles.fitted is None


def test_a_graph_that_cannot_be_fitted_falls_back_to_the_square_once(models_dir, caplog):
    square = OrtBackend(models_dir / PLATE, 1)
    calls = []

    def broken(canvas):
        calls.append(canvas)
        raise ModelLoadError("constant depends on the square")

    fitted = FittedInputs(square, 416, broken)
    with caplog.at_level(logging.WARNING, logger="engine.backends.fitted"):
        for _ in range(3):
            canvas, session = fitted.session((256, 416))
            assert canvas == (416, 416) and session is square
    assert calls == [(256, 416)]
    assert "cannot fit the detector to 416x256, using 416x416" in caplog.text


def test_a_plate_is_read_from_three_views_averaged(recognizer, evaldata):
    img = cv2.imread(str(evaldata / "images/us/wts-lg-000012.jpg"))
    box = recognizer.plates.detect(img).xyxy[0]
    crops = [crop(img, box, px, py) for px, py in OCR_VIEWS]
    one_by_one = recognizer.ocr.read(crops)
    together = recognizer.ocr.read(crops, views=len(OCR_VIEWS))
    assert len(together) == 1
    mean = np.mean([r.probs for r in one_by_one], axis=0)
    np.testing.assert_allclose(together[0].probs, mean, rtol=1e-5, atol=1e-6)
    full = recognizer.recognize(img).results[0]
    light = recognizer.recognize_batch([img], light=True)[0].results[0]
    assert full.plate == together[0].text.lower()
    assert light.plate == one_by_one[0].text.lower()  # per-frame reads: the first view


@pytest.mark.parametrize("h, w, scale, size", [
    (720, 1280, 416 / 1280, 416),   # a whole frame at its own scale: as fitted
    (320, 480, 416 / 1280, 160),    # a part of it: 156 px long at that scale
    (400, 900, 416 / 1280, 320),    # 292 px
    (500, 1060, 416 / 1280, 352),   # 344 px
    (100, 100, 416 / 1280, 160),    # the smallest input
    (300, 300, 4.0, 416),           # never past the detector's own size
])
def test_scaled_size_is_the_next_input_size_up(h, w, scale, size):
    assert scaled_size(h, w, scale) == size


def test_a_part_of_a_frame_is_detected_at_the_frames_scale(recognizer, evaldata):
    """detect(scale=): the plate found on a crop, at the whole frame's scale, on a smaller
    input (160 px long here instead of 416), is where the whole frame's detection puts it."""
    import av

    with av.open(str(evaldata / "videos" / "license_plate.mp4")) as c:
        frame = next(f for i, f in enumerate(c.decode(video=0)) if i == 60)
    img = frame.to_ndarray(format="bgr24")
    detector = recognizer.plates
    whole = detector.detect(img)
    x1, y1, x2, y2 = whole.xyxy[0]
    cx, cy = int((x1 + x2) / 2), int((y1 + y2) / 2)
    ox, oy = max(0, cx - 240), max(0, cy - 160)
    part = img[oy:oy + 320, ox:ox + 480]
    found = detector.detect(part, scale=416 / img.shape[1])
    assert (128, 160) in detector.fitted._by_shape  # the 480x320 part's input
    assert len(found) and found.score[0] > 0.5
    moved = found.xyxy[0] + np.array([ox, oy, ox, oy], np.float32)
    assert iou(moved, whole.xyxy[:1])[0] >= 0.8, (moved, whole.xyxy[0])
