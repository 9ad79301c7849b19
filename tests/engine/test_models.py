"""Model registry: resolution, verification and `fetch` against a local HTTP server."""

import functools
import http.server
import shutil
import threading

import pytest

from engine import ModelLoadError, models


@pytest.fixture
def mirror(tmp_path, models_dir):
    """A real HTTP server on 127.0.0.1 serving a folder with copies of the model files."""
    root = tmp_path / "mirror"
    root.mkdir()
    for spec in (models.PLATE_OCR, models.PLATE_OCR_CONFIG, models.VEHICLE_CLASSES):
        shutil.copy(models_dir / spec.filename, root / spec.filename)
    (root / models.VEHICLE_DETECTOR.filename).write_bytes(b"not the model")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join(5)


def test_resolution_order(monkeypatch, tmp_path):
    """The engine reads no environment: the CLI passes --models-dir or $PLATESTREAM_MODELS
    (tests/stream/test_engine_settings.py)."""
    monkeypatch.setenv("PLATESTREAM_MODELS", str(tmp_path / "env"))
    assert models.resolve_models_dir(tmp_path / "cli") == tmp_path / "cli"
    assert models.resolve_models_dir() == models.USER_CACHE.expanduser()


def test_shared_models_verify(models_dir):
    for spec in models.MODELS:
        assert models.check_model(spec, models_dir) is None, spec.filename


def test_missing_and_corrupt_files_name_the_file(tmp_path):
    msg = models.check_model(models.PLATE_OCR, tmp_path)
    assert "plate_ocr_cct_xs_v2_global.onnx is missing" in msg and "models fetch" in msg
    (tmp_path / models.PLATE_OCR.filename).write_bytes(b"garbage")
    assert "corrupt" in models.check_model(models.PLATE_OCR, tmp_path)
    with pytest.raises(ModelLoadError, match="plate_ocr_cct_xs_v2_global.onnx"):
        models.model_path(models.PLATE_OCR, tmp_path, verify_hash=True)


NOT_ON_MIRROR = models.ModelSpec("absent", "not_on_mirror.onnx", "0" * 64, "http://unused/",
                                 "a file the mirror does not have", required=False)


def test_fetch_downloads_verifies_and_deletes_bad_files(tmp_path, mirror):
    dest = tmp_path / "models"
    specs = (models.PLATE_OCR, models.PLATE_OCR_CONFIG, models.VEHICLE_CLASSES,
             models.VEHICLE_DETECTOR, NOT_ON_MIRROR)
    seen = []
    problems = models.fetch_models(dest, specs, base_url=mirror,
                                   progress=lambda s, done, total: seen.append(s.key))
    assert models.check_model(models.PLATE_OCR, dest) is None
    assert models.check_model(models.VEHICLE_CLASSES, dest) is None
    assert "plate_ocr" in seen
    assert len(problems) == 2
    assert any("vehicle_yolox_nano416.onnx: sha256 mismatch" in p for p in problems)
    assert any("not_on_mirror.onnx: download" in p and "404" in p
               for p in problems)
    assert not (dest / models.VEHICLE_DETECTOR.filename).exists()  # bad bytes never kept
    assert not list(dest.glob("*.part"))
    # a second run downloads nothing that already verifies
    seen.clear()
    models.fetch_models(dest, specs[:3], base_url=mirror, progress=lambda *a: seen.append(1))
    assert seen == []


def test_fetch_unreachable_host_is_one_line(tmp_path):
    problems = models.fetch_models(tmp_path, (models.PLATE_OCR,),
                                   base_url="http://127.0.0.1:9", timeout=2)
    assert len(problems) == 1 and "download from http://127.0.0.1:9" in problems[0]
