"""Per-frame light recognition and the per-vehicle enrich: together they give the full read."""

from __future__ import annotations

import pytest

from engine import read_image_file
from engine.recognizer import OCR_VIEWS
from stream.wire import plate_result


@pytest.fixture(scope="module")
def images(evaldata, endtoend):
    rows = [r for r in endtoend if r["region"] in ("us", "eu")][::9][:10]
    return [(read_image_file(evaldata / r["image"]), ["us"] if r["region"] == "us" else [])
            for r in rows]


@pytest.mark.parametrize("mmc,config", [(False, None), (True, None), (False, {"mode": "fast"}),
                                        (False, {"region": "strict"})])
def test_light_then_enrich_equals_full(recognizer, images, mmc, config, monkeypatch):
    # A light call reads the first of the OCR's views (the stream votes over frames); with
    # that one view the full call reads the same, which is what is compared here.
    monkeypatch.setattr("engine.recognizer.OCR_VIEWS", OCR_VIEWS[:1])
    compared = 0
    for image, regions in images:
        full = recognizer.recognize(image, regions, mmc, config)
        light = recognizer.recognize_batch([image], regions, mmc, config, light=True)[0]
        assert [(r.box, r.plate, r.dscore, r.region) for r in light.results] == [
            (r.box, r.plate, r.dscore, r.region) for r in full.results]
        for lr, fr in zip(light.results, full.results, strict=True):
            assert lr.score == pytest.approx(fr.score, abs=1e-4)
            assert lr.vehicle is None and len(lr.candidates) == 1
            enriched = recognizer.enrich(image, lr, regions, mmc, config)
            assert enriched.plate == fr.plate and enriched.vehicle == fr.vehicle
            assert [c.plate for c in enriched.candidates] == [c.plate for c in fr.candidates]
            assert plate_result(enriched).keys() == plate_result(fr).keys()
            assert (enriched.color, enriched.model_make) == (fr.color, fr.model_make)
            compared += 1
    assert compared >= 8


def test_light_keeps_vehicles_for_detection_rule_strict(recognizer, images):
    cfg = {"detection_rule": "strict"}
    for image, regions in images[:4]:
        full = recognizer.recognize(image, regions, False, cfg)
        light = recognizer.recognize_batch([image], regions, False, cfg, light=True)[0]
        assert [r.plate for r in light.results] == [r.plate for r in full.results]
        assert all(r.vehicle is not None for r in light.results)


def test_enrich_of_an_unknown_box_attaches_a_vehicle_by_box(recognizer, images):
    image, regions = images[0]
    read = recognizer.recognize(image, regions).results[0]
    from engine.result import Box

    moved = read.replace(box=Box(read.box.xmin + 1, read.box.ymin, read.box.xmax + 1,
                                 read.box.ymax), vehicle=None)
    out = recognizer.enrich(image, moved, regions)
    assert out.plate == read.plate and out.box == moved.box
    assert out.vehicle == read.vehicle
