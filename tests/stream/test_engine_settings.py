"""One engine configuration: EngineSettings filled from flags > environment > the config's
engine: section > defaults, for run and serve alike; no environment read in engine/."""

from __future__ import annotations

import argparse
import subprocess
from dataclasses import fields
from pathlib import Path
from typing import get_type_hints

import pytest

from engine import EngineConfigError
from engine.backends.select import PREFERENCES
from engine.settings import EngineSettings
from stream.cli import _flag_type, _parser, engine_settings
from stream.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[2]


def test_precedence_cli_env_yaml_default(tmp_path):
    yaml_section = EngineSettings(backend="onnxruntime", threads=3, models_dir="m",
                                  batch_window_ms=9.0)
    env = {"PLATESTREAM_BACKEND": "tensorrt", "PLATESTREAM_MODELS": "/env/models"}
    none = argparse.Namespace()
    s = engine_settings(none, yaml_section, base=tmp_path, env={})
    assert (s.backend, s.threads, s.models_dir) == ("onnxruntime", 3, str(tmp_path / "m"))
    assert s.batch_window_ms == 9.0 and s.workers == EngineSettings().workers
    s = engine_settings(none, yaml_section, base=tmp_path, env=env)
    assert (s.backend, s.models_dir) == ("tensorrt", "/env/models")  # env over YAML
    cli = argparse.Namespace(backend="onnxruntime-cuda", threads=1)
    s = engine_settings(cli, yaml_section, base=tmp_path, env=env)
    assert (s.backend, s.threads, s.models_dir) == ("onnxruntime-cuda", 1, "/env/models")
    assert engine_settings(none, env={}).backend == "auto"
    with pytest.raises(EngineConfigError, match=r"\$PLATESTREAM_BACKEND: expected one of"):
        engine_settings(none, env={"PLATESTREAM_BACKEND": "gpu"})


def test_flags_come_from_the_one_schema():
    """Every flagged field is a flag of run and serve; backend choices are the engine's."""
    run = _parser().parse_args(["run", "x.yaml", "--backend", "onnxruntime", "--workers", "1",
                                "--batch-window-ms", "0"])
    assert (run.backend, run.workers, run.batch_window_ms) == ("onnxruntime", 1, 0.0)
    serve = _parser().parse_args(["serve", "--precision", "fp32", "--workers", "3"])
    assert (serve.precision, serve.workers) == ("fp32", 3)
    read = _parser().parse_args(["read", "a.jpg", "--threads", "2"])
    assert read.threads == 2 and not hasattr(read, "workers")
    flagged = {f.name for f in fields(EngineSettings) if f.metadata.get("flag")}
    assert flagged <= set(vars(run))
    with pytest.raises(SystemExit):
        _parser().parse_args(["read", "a.jpg", "--backend", "nope"])
    assert _flag_type(get_type_hints(EngineSettings)["backend"])["choices"] == list(PREFERENCES)


def test_yaml_engine_section_and_moved_batch_window(tmp_path, evaldata):
    p = tmp_path / "c.yaml"
    p.write_text("engine: {backend: onnxruntime, batch_window_ms: 2}\n"
                 f"cameras: {{a: {{url: {evaldata}/videos/cars.mp4}}}}\n")
    cfg = load_config(p)
    assert isinstance(cfg.engine, EngineSettings) and cfg.engine.batch_window_ms == 2
    p.write_text("server: {batch_window_ms: 2}\n"
                 f"cameras: {{a: {{url: {evaldata}/videos/cars.mp4}}}}\n")
    with pytest.raises(ConfigError, match=r"server.batch_window_ms: moved: .*engine"):
        load_config(p)


def test_serve_config_honours_the_engine_section(tmp_path, models_dir):
    """serve --config with engine: {backend: tensorrt} asks for TensorRT (no GPU here: the
    one-line error says so), where before the engine: section was ignored."""
    cfg = tmp_path / "srv.yaml"
    cfg.write_text("server: {port: 0}\nengine: {backend: tensorrt}\n")
    p = subprocess.run([str(ROOT / ".venv/bin/python"), "-m", "stream.cli", "serve",
                        "--config", str(cfg)], capture_output=True, text=True, timeout=120,
                       cwd=tmp_path, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin",
                                          "HOME": str(tmp_path), "PLATESTREAM_STATE":
                                          str(tmp_path / "s"),
                                          "PLATESTREAM_MODELS": str(models_dir)})
    assert p.returncode == 2, p.stderr
    assert "backend tensorrt is not usable" in p.stderr and "Traceback" not in p.stderr


def test_engine_reads_no_environment():
    for path in (ROOT / "engine").rglob("*.py"):
        assert "os.environ" not in path.read_text() and "getenv" not in path.read_text(), path
