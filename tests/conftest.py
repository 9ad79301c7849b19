"""Shared fixtures: the real models and evaluation data next to the project root."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PLATESTREAM_SHARED", ROOT.parent / "shared"))
MODELS_DIR = Path(os.environ.get("PLATESTREAM_MODELS", SHARED / "models"))
EVALDATA = SHARED / "evaldata"

os.environ.setdefault("PLATESTREAM_MODELS", str(MODELS_DIR))
# The suite's expected reads are the fp32 models' (scripts/setup.sh may have built int8 copies,
# which precision auto would pick up); tests/engine/test_quantize.py covers int8 on its own.
os.environ.setdefault("PLATESTREAM_PRECISION", "fp32")
# Never the user's ~/.local/state: a session directory, and one per test (below).
os.environ["PLATESTREAM_STATE"] = tempfile.mkdtemp(prefix="platestream-state-")


@pytest.fixture(autouse=True)
def state_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's own state directory (spools, usage counters), also for its subprocesses."""
    d = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("PLATESTREAM_STATE", str(d))
    return d


def pytest_configure(config: pytest.Config) -> None:
    if not (MODELS_DIR / "plate_detector_yolov9t416.onnx").is_file():
        raise pytest.UsageError(
            f"models not found in {MODELS_DIR}: set PLATESTREAM_MODELS or place ../shared/models"
        )


@pytest.fixture(scope="session")
def models_dir() -> Path:
    return MODELS_DIR


@pytest.fixture(scope="session")
def evaldata() -> Path:
    return EVALDATA


@pytest.fixture(scope="session")
def eu1(evaldata: Path):
    """The EU sample image (one plate, m5xsx), decoded."""
    from engine import read_image_file

    return read_image_file(str(evaldata / "images/eu/eu1.jpg"))


@pytest.fixture(scope="session")
def endtoend() -> list[dict]:
    with open(EVALDATA / "endtoend.jsonl") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="session")
def recognizer():
    """One real Recognizer for the whole session (loading models costs ~0.5 s)."""
    from engine import Recognizer

    return Recognizer.from_models_dir(MODELS_DIR, threads=2, precision="fp32")


@pytest.fixture(scope="session")
def square_recognizer():
    """The same with the detectors' exported 416x416 input (what TensorRT and Triton run)."""
    from engine import Recognizer

    return Recognizer.from_models_dir(MODELS_DIR, threads=2, precision="fp32",
                                      detector_input="square")
