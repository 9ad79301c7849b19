"""Pure pre/post-processing functions on hand-made arrays (no model loaded)."""

from contextlib import nullcontext as does_not_raise

import numpy as np
import pytest

from engine.formats import formats_for, read_with_formats
from engine.ocr.process import OcrConfig, beam_candidates, decode
from engine.plates import process as plates
from engine.preprocess import letterbox
from engine.types import Detections
from engine.vehicles import process as vehicles

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_"
CFG = OcrConfig(ALPHABET, "_", 10, 64, 128, ("France", "Unknown"))


def onehot(text: str, sure: float = 0.98) -> np.ndarray:
    p = np.full((10, len(ALPHABET)), (1 - sure) / (len(ALPHABET) - 1), np.float32)
    for i, c in enumerate(text.ljust(10, "_")):
        p[i, :] = (1 - sure) / (len(ALPHABET) - 1)
        p[i, ALPHABET.index(c)] = sure
    return p


@pytest.mark.parametrize(
    "shape, centered, ratio, pad",
    [
        ((750, 1000), True, 0.416, (0.0, 52.0)),
        ((900, 1600), True, 0.26, (0.0, 91.0)),
        ((100, 50), True, 4.16, (104.0, 0.0)),
        ((750, 1000), False, 0.416, (0.0, 0.0)),
    ],
)
def test_letterbox_geometry_and_round_trip(shape, centered, ratio, pad):
    img = np.zeros((*shape, 3), np.uint8)
    canvas, lb = letterbox(img, 416, centered=centered)
    assert canvas.shape == (416, 416, 3)
    assert lb.ratio == pytest.approx(ratio, rel=1e-3)
    assert (lb.pad_x, lb.pad_y) == pytest.approx(pad, abs=0.01)
    frame_box = np.array([[10, 20, 40, 60]], np.float32)
    canvas_box = frame_box * lb.ratio + [lb.pad_x, lb.pad_y, lb.pad_x, lb.pad_y]
    assert lb.to_frame(canvas_box) == pytest.approx(frame_box, abs=1e-3)


def test_letterbox_centred_pads_with_114():
    canvas, lb = letterbox(np.zeros((200, 416, 3), np.uint8), 416, centered=True)
    assert canvas[0, 0, 0] == 114 and canvas[208, 208, 0] == 0 and canvas[-1, -1, 0] == 114


def test_plate_decode_threshold_clip_and_order():
    img = np.zeros((750, 1000, 3), np.uint8)
    _, lb = plates.preprocess(img)
    rows = np.array([
        [0, 161.4, 192.6, 250.8, 214.2, 0, 0.80],   # a plate
        [0, 10, 60, 20, 70, 0, 0.10],               # below threshold
        [0, 400, 300, 430, 500, 0, 0.95],           # runs off the right edge -> clipped
        [0, 5, 5, 5.5, 5.5, 0, 0.90],               # degenerate after mapping
    ], np.float32)
    dets = plates.decode(rows, lb, 1000, 750, threshold=0.25)
    assert len(dets) == 2
    assert dets.score.tolist() == pytest.approx([0.95, 0.80])
    assert dets.xyxy[0, 2] == 1000 and dets.xyxy[0, 3] == 750
    assert dets.xyxy[1] == pytest.approx([388, 338, 603, 390], abs=1)


def test_plate_decode_empty_output():
    _, lb = plates.preprocess(np.zeros((100, 100, 3), np.uint8))
    assert len(plates.decode(np.empty((0, 7), np.float32), lb, 100, 100, 0.25)) == 0


def test_vehicle_decode_one_grid_cell_and_agnostic_nms():
    out = np.zeros((3549, 85), np.float32)
    # stride-32 cell (x=5, y=6) is index 52*52 + 26*26 + 6*13 + 5
    i = 52 * 52 + 26 * 26 + 6 * 13 + 5
    out[i, :4] = [0.5, 0.5, np.log(4), np.log(2)]  # centre (176, 208), size 128x64 on canvas
    out[i, 4] = 0.9
    out[i, 5 + 2] = 0.8   # car
    out[i, 5 + 7] = 0.6   # truck: same box, dropped by class-agnostic NMS
    _, lb = vehicles.preprocess(np.zeros((832, 832, 3), np.uint8))  # ratio 0.5
    dets = vehicles.decode(out[None], lb, 832, 832, threshold=0.3)
    assert len(dets) == 1 and dets.class_id[0] == 2
    assert dets.score[0] == pytest.approx(0.72)
    assert dets.xyxy[0] == pytest.approx([224, 352, 480, 480])


def test_ocr_decode_text_scores_region_and_candidates():
    probs = onehot("AB123C")
    probs[2] = 0.0
    probs[2, ALPHABET.index("1")] = 0.6
    probs[2, ALPHABET.index("I")] = 0.4
    region = np.array([[0.9, 0.1]], np.float32)
    (read,) = decode(probs[None], region, CFG)
    assert read.text == "AB123C" and read.region == "France"
    assert read.region_score == pytest.approx(0.9)
    assert len(read.char_scores) == 6 and read.char_scores[2] == pytest.approx(0.6)
    assert [c[0] for c in read.candidates[:2]] == ["AB123C", "ABI23C"]
    assert read.candidates[0][1] > read.candidates[1][1]


@pytest.mark.parametrize(
    "text, expected, raises",
    [
        ("ABC", "ABC", does_not_raise()),
        ("A", "A", does_not_raise()),
        ("ABCDEFGHIJ", "ABCDEFGHIJ", does_not_raise()),
        ("", None, does_not_raise()),  # all padding -> no candidate at all
    ],
)
def test_beam_candidates_merges_padding(text, expected, raises):
    with raises:
        cands = beam_candidates(onehot(text), ALPHABET, "_")
    if expected is None:
        assert cands == [] or cands[0][1] < 0.01
    else:
        assert cands[0][0] == expected
        assert len({t for t, _ in cands}) == len(cands)


def test_formats_fix_confusions_by_position():
    probs = onehot("ABCO123")  # Brazilian LLLNNNN with the digit 0 read as letter O
    probs[3, ALPHABET.index("0")] = 0.3
    fit = read_with_formats(probs, ("br",), ALPHABET, "_")
    assert fit.text == "ABC0123" and fit.format == "LLLNNNN"
    assert read_with_formats(probs, ("us",), ALPHABET, "_") is None  # no generic US format
    assert formats_for("us-ca") == ("NLLLNNN",) and formats_for("br-sp") == formats_for("br")


def test_detections_checks_shapes_and_filters():
    with pytest.raises(ValueError, match=r"score: expected shape \(2,\), got \(3,\)"):
        Detections(np.zeros((2, 4), np.float32), np.zeros(3, np.float32), np.zeros(2, np.int32))
    d = Detections(np.zeros((3, 4), np.float32), np.array([0.1, 0.5, 0.9], np.float32),
                   np.zeros(3, np.int32))
    assert len(d[d.score > 0.3]) == 2 and len(Detections.empty()) == 0
