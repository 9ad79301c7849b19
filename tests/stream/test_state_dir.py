"""The state directory: resolution, a clear error when it cannot be written, and no command
writing into the working directory by default."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import yaml

from stream.config import ServerSettings, load_config
from stream.state import StateDirError, resolve_state_dir, writable_dir
from tests.stream.helpers import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]


def test_state_dir_precedence(tmp_path):
    home = Path.home()
    assert resolve_state_dir({}) == home / ".local/state/platestream"
    assert resolve_state_dir({"XDG_STATE_HOME": "/x"}) == Path("/x/platestream")
    env = {"XDG_STATE_HOME": "/x", "PLATESTREAM_STATE": str(tmp_path)}
    assert resolve_state_dir(env) == tmp_path


def test_config_and_server_default_to_the_state_dir(tmp_path, evaldata, monkeypatch):
    monkeypatch.setenv("PLATESTREAM_STATE", str(tmp_path / "state"))
    path = tmp_path / "gate.yaml"
    path.write_text(yaml.safe_dump({"cameras": {"c": {"url": "videos/cars.mp4"}}}))
    cfg = load_config(path, data_dir=str(evaldata))
    assert cfg.spool_path == tmp_path / "state" / "spool" / "gate.sqlite"
    assert Path(cfg.output_dir) == tmp_path / "state"
    assert ServerSettings().data_path == tmp_path / "state"
    assert ServerSettings(data_dir=str(tmp_path)).data_path == tmp_path


def test_unwritable_dir_is_one_error_naming_it(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StateDirError, match=str(blocker / "state")):
        writable_dir(blocker / "state")


def _run(args, cwd, env, timeout=180):
    return subprocess.run([sys.executable, "-m", "stream.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture()
def user_env(tmp_path):
    """A user's shell: the package importable, state and XDG dirs under tmp_path."""
    return {**os.environ, "PYTHONPATH": str(ROOT), "PLATESTREAM_STATE": str(tmp_path / "state"),
            "HOME": str(tmp_path / "home")}


def test_unwritable_state_dir_fails_run_at_start(tmp_path, evaldata, user_env):
    (tmp_path / "file").write_text("")
    bad = tmp_path / "file" / "state"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"cameras": {"c": {"url": "videos/cars.mp4"}}}))
    env = {**user_env, "PLATESTREAM_STATE": str(bad)}
    for args in (["run", str(cfg), "--data-dir", str(evaldata)], ["serve", "--port", "0"]):
        p = _run(args, tmp_path, env, timeout=60)
        assert p.returncode == 2, p.stderr
        lines = [ln for ln in p.stderr.splitlines() if ln.startswith("platestream:")]
        assert len(lines) == 1 and str(bad) in lines[0], p.stderr
        assert "Traceback" not in p.stderr


def test_no_subcommand_writes_into_the_working_directory(tmp_path, evaldata, user_env):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    cfg = tmp_path / "cfg" / "street.yaml"
    cfg.parent.mkdir()
    cfg.write_text(yaml.safe_dump({
        "cameras": {"street": {"url": "videos/license_plate.mp4", "realtime": False,
                               "sample": 3, "outputs": ["csv", "jsonl"]}},
        "outputs": {"csv": {"type": "csv", "file": "{camera_id}.csv"},
                    "jsonl": {"type": "jsonl", "file": "{camera_id}.jsonl"}},
    }))
    data = ["--data-dir", str(evaldata)]
    for args, ok in (
        (["--version"], True),
        (["read", str(evaldata / "images/eu/eu1.jpg"), "--threads", "2"], True),
        (["models", "check"], True),
        (["check", str(cfg), *data], True),
        (["run", str(cfg), *data, "--threads", "2"], True),
        (["build-engines"], False),  # no GPU here: one line, but nothing written either
    ):
        p = _run(args, cwd, user_env)
        assert (p.returncode == 0) == ok, (args, p.stderr[-2000:])
        assert not list(cwd.iterdir()), (args, list(cwd.iterdir()))
    state = tmp_path / "state"
    assert (state / "spool" / "street.sqlite").is_file()
    assert (state / "street.csv").is_file() and (state / "street.jsonl").is_file()

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "stream.cli", "serve", "--host", "127.0.0.1",
                             "--port", str(port), "--threads", "1", "--workers", "1"],
                            cwd=cwd, env=user_env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        def up() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                    return r.status == 200
            except OSError:
                return False

        assert wait_for(up, 120, 0.5), "serve did not come up"
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    assert not list(cwd.iterdir()), list(cwd.iterdir())
