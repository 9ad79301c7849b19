"""`platestream read` and `platestream models` as a user runs them."""

import json
import subprocess
import sys

import pytest


def run(*args, env_models=True, models_dir=None):
    import os

    env = dict(os.environ)
    if models_dir:
        env["PLATESTREAM_MODELS"] = str(models_dir)
    return subprocess.run([sys.executable, "-m", "stream.cli", *args], capture_output=True,
                          text=True, timeout=120, env=env)


def test_read_prints_one_json_per_image_and_reports_bad_files(tmp_path, evaldata):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    good = evaldata / "images/eu/eu1.jpg"
    p = run("read", str(good), str(empty), str(text), str(tmp_path / "missing.jpg"),
            str(evaldata / "images/eu/eu2.jpg"), "--regions", "gb")
    assert p.returncode == 1
    docs = [json.loads(line) for line in p.stdout.splitlines()]
    assert [d["filename"] for d in docs] == ["eu1.jpg", "eu2.jpg"]
    assert docs[0]["results"][0]["plate"] == "m5xsx" and docs[0]["version"] == 1
    errors = [line for line in p.stderr.splitlines() if line.startswith("platestream:")]
    assert len(errors) == 3
    assert "empty.jpg: empty file" in errors[0] and "notes.jpg: not an image" in errors[1]
    assert "missing.jpg: cannot read" in errors[2]
    assert "Traceback" not in p.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--config", '{"treshold_d": 1}'], "config.treshold_d: unknown key"),
        (["--regions", "zz"], "unknown region code 'zz'"),
        (["--models-dir", "/nonexistent"], "plate_detector_yolov9t416.onnx is missing"),
        (["--threads", "0"], "--threads: must be at least 1, got 0"),
    ],
)
def test_read_bad_options_are_one_line(evaldata, args, message):
    p = run("read", str(evaldata / "images/eu/eu1.jpg"), *args)
    assert p.returncode == 2 and message in p.stderr and "Traceback" not in p.stderr


def test_read_mmc_and_config(evaldata):
    p = run("read", str(evaldata / "images/eu/eu1.jpg"), "--mmc", "--config",
            '{"mode": "fast"}')
    res = json.loads(p.stdout)["results"][0]
    assert p.returncode == 0 and res["vehicle"]["type"]
    assert res["model_make"] == [{"make": "generic", "model": "Unknown", "score": 0}]


def test_models_check(tmp_path, models_dir):
    ok = run("models", "check", "--models-dir", str(models_dir))
    assert ok.returncode == 0 and "sha256 verified" in ok.stdout
    bad = run("models", "check", "--models-dir", str(tmp_path))
    assert bad.returncode == 1 and bad.stderr.count("is missing") == 5
