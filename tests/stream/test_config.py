"""Config loading: start from MINIMAL, change one key, check the key path and file line."""

from __future__ import annotations

import copy
from contextlib import ExitStack as DoesNotRaise
from pathlib import Path

import pytest
import yaml

from stream.cli import main
from stream.config import ConfigError, load_config, strip_credentials

MINIMAL = {
    "cameras": {"gate": {"url": "rtsp://u:p@10.0.0.1/s", "outputs": ["csv"]}},
    "outputs": {"csv": {"type": "csv", "file": "events/{camera_id}_{date}.csv"}},
}


def _write(tmp_path: Path, cfg: dict) -> Path:
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return p


def _with(path: str, value) -> dict:
    cfg = copy.deepcopy(MINIMAL)
    *keys, last = path.split(".")
    d = cfg
    for k in keys:
        d = d.setdefault(k, {})
    d[last] = value
    return cfg


@pytest.mark.parametrize(("path", "value", "expected"), [
    ("cameras.gate.sample", 2, DoesNotRaise()),
    ("cameras.gate.fsp", 5, pytest.raises(ConfigError, match=r"cameras\.gate\.fsp: unknown key "
                                          r"\(did you mean 'fps'\?\)")),
    ("cameras.gate.fps", 0, pytest.raises(ConfigError, match=r"cameras\.gate\.fps: must be > 0")),
    ("cameras.gate.sample", 0, pytest.raises(ConfigError, match=r"sample: must be >= 1, got 0")),
    ("cameras.gate.sample", "two", pytest.raises(ConfigError, match="expected an integer")),
    ("cameras.gate.mmc", "yes please", pytest.raises(ConfigError, match="true or false")),
    ("cameras.gate.fast_decode", "sometimes", pytest.raises(
        ConfigError, match=r"fast_decode: expected true or false or 'auto', got 'sometimes'")),
    ("cameras.gate.fast_decode", "auto", DoesNotRaise()),
    ("cameras.gate.fast_decode", False, DoesNotRaise()),
    ("cameras.gate.regions", ["xx"], pytest.raises(ConfigError, match=r"regions: unknown region")),
    ("cameras.gate.config", {"threshold_d": 2},
     pytest.raises(ConfigError, match=r"cameras\.gate\.config: .*within 0\.\.1")),
    ("cameras.gate.outputs", ["nope"],
     pytest.raises(ConfigError, match=r"outputs: unknown output 'nope'; defined outputs: csv")),
    ("cameras.gate.zones", [[0, 0], [10, 0]], pytest.raises(ConfigError, match="at least 3")),
    ("cameras.gate.zones", [[0, 0], [10, 0], [10, 10]], DoesNotRaise()),
    ("cameras.gate.url", "no/such/video.mp4", pytest.raises(ConfigError, match="not found")),
    ("cameras.gate.url", None, pytest.raises(ConfigError, match=r"url: expected a string")),
    ("outputs.csv.type", "ftp", pytest.raises(ConfigError, match="expected one of csv, jsonl")),
    ("outputs.csv.file", "{camera}_{nope}.csv", pytest.raises(ConfigError, match="bad template")),
    ("outputs.hook", {"type": "webhook"},
     pytest.raises(ConfigError, match=r"outputs\.hook\.url: required for type webhook")),
    ("outputs.hook", {"type": "webhook", "url": "ftp://x"},
     pytest.raises(ConfigError, match="http:// or https://")),
    ("outputs.hook", {"type": "webhook", "url": "http://x/", "header": "nocolon"},
     pytest.raises(ConfigError, match="'Name: value'")),
    ("server.port", 70000, pytest.raises(ConfigError, match=r"server\.port: must be <= 65535")),
    ("server.prot", 1, pytest.raises(ConfigError, match=r"did you mean 'port'")),
    ("engine.threads", 0, pytest.raises(ConfigError, match=r"engine\.threads: must be >= 1")),
    ("engine.backend", "triton", DoesNotRaise()),
    ("engine.triton", {"url": "gpu-box:8001", "timeout": 1.5}, DoesNotRaise()),
    ("engine.triton.timeout", 0, pytest.raises(ConfigError,
                                               match=r"engine\.triton\.timeout: must be > 0")),
    ("engine.triton.urll", "x", pytest.raises(ConfigError, match=r"did you mean 'url'")),
    ("timezone", "Mars/Base", pytest.raises(ConfigError, match="unknown time zone")),
    ("camras", {}, pytest.raises(ConfigError, match=r"did you mean 'cameras'")),
])
def test_config_keys(tmp_path, path, value, expected):
    with expected:
        load_config(_write(tmp_path, _with(path, value)))


def test_errors_name_the_file_line(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("cameras:\n  gate:\n    url: rtsp://h/s\n    sample: 2\n    fsp: 5\n")
    with pytest.raises(ConfigError, match=rf"^{p}:5: cameras\.gate\.fsp: unknown key"):
        load_config(p)
    p.write_text("cameras:\n  gate:\n    url: rtsp://h/s\n    url: rtsp://h/t\n")
    with pytest.raises(ConfigError, match=r":4: cameras\.gate\.url: duplicate key"):
        load_config(p)
    p.write_text("cameras:\n  gate: [\n")
    with pytest.raises(ConfigError, match=r":3: invalid YAML"):
        load_config(p)


def test_defaults_are_merged_and_server_section_loads(tmp_path, evaldata):
    cfg = load_config(_write(tmp_path, {
        "server": {"port": 9090, "token": "abc"},
        "defaults": {"sample": 3, "regions": ["US-CA"], "outputs": ["csv"]},
        "cameras": {"a": {"url": "rtsp://h/a"}, "b": {"url": "videos/cars.mp4", "sample": 1}},
        "outputs": MINIMAL["outputs"],
    }), data_dir=evaldata)
    assert cfg.server.enabled and cfg.server.port == 9090 and cfg.server.token == "abc"
    assert cfg.cameras["a"].sample == 3 and cfg.cameras["b"].sample == 1
    assert cfg.cameras["a"].regions == ("us-ca",) and cfg.cameras["a"].live
    assert cfg.cameras["b"].url == str(evaldata / "videos" / "cars.mp4")
    assert not cfg.cameras["b"].live
    assert not load_config(_write(tmp_path, MINIMAL)).server.enabled


def test_sample_and_fps_together_is_an_error(tmp_path):
    cfg = _with("cameras.gate.fps", 5)
    cfg["cameras"]["gate"]["sample"] = 2
    with pytest.raises(ConfigError, match="either sample or fps"):
        load_config(_write(tmp_path, cfg))


@pytest.mark.parametrize(("url", "safe"), [
    ("rtsp://user:pass@camera-1.local:554/stream1", "rtsp://camera-1.local:554/stream1"),
    ("rtsp://camera/s", "rtsp://camera/s"),
    ("/videos/a@b.mp4", "/videos/a@b.mp4"),
])
def test_strip_credentials(url, safe):
    assert strip_credentials(url) == safe


def test_check_command(tmp_path, capsys):
    good = _write(tmp_path, MINIMAL)
    assert main(["check", str(good)]) == 0
    assert "OK" in capsys.readouterr().out
    bad = _write(tmp_path, _with("cameras.gate.fsp", 1))
    assert main(["check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("platestream: ") and "fsp: unknown key" in err and "Traceback" not in err


def test_demo_config_is_valid(evaldata):
    cfg = load_config(Path(__file__).resolve().parents[2] / "configs" / "demo.yaml",
                      data_dir=evaldata)
    assert set(cfg.cameras) == {"toll-booth", "street"}


def test_camera_fps_overrides_default_sample(tmp_path):
    cfg = load_config(_write(tmp_path, {
        "defaults": {"sample": 3},
        "cameras": {"a": {"url": "rtsp://h/a", "fps": 5}, "b": {"url": "rtsp://h/b"}},
    }))
    assert (cfg.cameras["a"].sample, cfg.cameras["a"].fps) == (1, 5.0)
    assert (cfg.cameras["b"].sample, cfg.cameras["b"].fps) == (3, None)


def test_example_config_is_valid(evaldata):
    cfg = load_config(Path(__file__).resolve().parents[2] / "configs" / "cameras.example.yaml",
                      data_dir=evaldata)
    assert cfg.server.enabled and cfg.outputs["hook1"].headers == {"Authorization": "Token x"}
    assert not cfg.cameras["usb"].active and cfg.cameras["gate-2"].fps == 5


def test_engine_triton_section(tmp_path):
    cfg = _with("engine", {"backend": "triton", "triton": {"url": "gpu-box:8001", "retries": 0}})
    engine = load_config(_write(tmp_path, cfg)).engine
    assert engine.backend == "triton"
    assert (engine.triton.url, engine.triton.retries, engine.triton.timeout) == (
        "gpu-box:8001", 0, 5.0)


def test_top_level_node_id_names_the_node_on_mqtt(tmp_path):
    cfg = _with("node_id", "gate-north")
    cfg["outputs"]["hub"] = {"type": "mqtt", "host": "broker", "heartbeat": 5}
    cfg["outputs"]["ha"] = {"type": "mqtt", "host": "broker", "node_id": "other"}
    c = load_config(_write(tmp_path, cfg))
    assert c.node_id == "gate-north"
    assert (c.outputs["hub"].mqtt.node_id, c.outputs["hub"].mqtt.heartbeat) == ("gate-north", 5)
    assert c.outputs["ha"].mqtt.node_id == "other"  # an output's own node_id wins
    assert load_config(_write(tmp_path, MINIMAL)).node_id  # default: the host name
    with pytest.raises(ConfigError, match=r"node_id: expected a name without"):
        load_config(_write(tmp_path, _with("node_id", "a/b")))
