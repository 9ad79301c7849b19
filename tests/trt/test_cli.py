"""``python -m trt_builder build`` and ``platestream build-engines``: argument handling and
the one-line errors (no GPU needed: every case fails before TensorRT would be used)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.backends.tensorrt import TENSORRT_MISSING
from trt_builder.cli import main as trt_main

ROOT = Path(__file__).resolve().parents[2]
HAS_TRT = importlib.util.find_spec("tensorrt") is not None


def _platestream(argv: list[str]) -> int:
    from stream.cli import main

    return main(argv)


@pytest.fixture(params=["python -m trt_builder build", "platestream build-engines"])
def run(request, capsys):
    """Both entry points, same arguments; returns (exit code, stderr lines)."""

    def call(*args: str) -> tuple[int, list[str]]:
        if request.param.startswith("python"):
            code = trt_main(["build", *args])
        else:
            code = _platestream(["build-engines", *args])
        err = capsys.readouterr().err.strip().splitlines()
        return code, [line for line in err if " INFO " not in line]

    return call


@pytest.mark.parametrize(
    "args, message",
    [
        (["--max-batch", "0"], "--max-batch must be between 1 and 256, got 0"),
        (["--max-batch", "1000"], "--max-batch must be between 1 and 256, got 1000"),
        (["--workspace-mb", "8"], "--workspace-mb must be >= 64, got 8"),
        (["--int8"], "--int8 needs --calib-images DIR"),
        (["--int8", "--calib-images", "/nonexistent"], "--calib-images /nonexistent is not a dir"),
        (["--calib-max", "0"], "--calib-max must be >= 1, got 0"),
        (["--models-dir", "/nonexistent"], "--models-dir /nonexistent is not a directory"),
    ],
)
def test_bad_arguments_one_line(run, args: list[str], message: str) -> None:
    code, err = run(*args)
    assert code == 2
    assert len(err) == 1, err
    assert message in err[0]


def test_int8_without_images(run, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("no images here")
    code, err = run("--int8", "--calib-images", str(tmp_path))
    assert code == 2 and len(err) == 1
    assert "has no images" in err[0]


def test_models_dir_without_models(run, tmp_path: Path) -> None:
    code, err = run("--models-dir", str(tmp_path))
    assert code == 2 and len(err) == 1
    assert "plate_detector_yolov9t416.onnx is missing" in err[0]


def test_out_is_a_file(run, tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("")
    code, err = run("--out", str(f))
    assert code == 2 and "exists and is not a directory" in err[0]


def test_unknown_model_is_an_argparse_error(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        trt_main(["build", "--only", "ocr"])
    assert exc.value.code == 2
    assert "invalid choice: 'ocr'" in capsys.readouterr().err


@pytest.mark.skipif(HAS_TRT, reason="TensorRT is installed here")
def test_tensorrt_missing_is_one_clear_line(run, tmp_path: Path) -> None:
    code, err = run("--out", str(tmp_path / "engines"), "--fp16")
    assert code == 2
    assert len(err) == 1, err
    assert err[0].endswith(TENSORRT_MISSING)
    assert not (tmp_path / "engines").exists()  # nothing written before the check


@pytest.mark.skipif(HAS_TRT, reason="TensorRT is installed here")
def test_module_entry_point_subprocess(tmp_path: Path) -> None:
    """The real ``python -m trt_builder`` process: exit 2, one line, no traceback."""
    proc = subprocess.run(
        [sys.executable, "-m", "trt_builder", "build", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if " INFO " not in ln]
    assert lines == [f"python -m trt_builder: {TENSORRT_MISSING}"]
    assert "Traceback" not in proc.stderr


def test_help_lists_the_options(capsys) -> None:
    with pytest.raises(SystemExit):
        trt_main(["build", "--help"])
    out = capsys.readouterr().out
    for opt in ("--models-dir", "--out", "--fp16", "--int8", "--calib-images", "--max-batch"):
        assert opt in out
