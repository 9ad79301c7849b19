"""The server's small parts on their own: field parsing, settings, rate limiter, usage store,
the serve command's errors, and run_server's start/stop."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request
from contextlib import ExitStack as DoesNotRaise
from datetime import UTC, datetime

import pytest

from stream.cli import main
from stream.config import ServerSettings
from stream.http.errors import ApiError
from stream.http.parsing import (
    Limits,
    RawForm,
    decode_upload,
    make_filename,
    parse_bool,
    parse_timestamp,
    upload_bytes,
)
from stream.http.ratelimit import RateLimiter
from stream.http.server import run_server
from stream.http.usage import MAX_CALLS, UsageStore


@pytest.mark.parametrize(("value", "expected", "exception"), [
    ("true", True, DoesNotRaise()), ("True", True, DoesNotRaise()), ("1", True, DoesNotRaise()),
    ("false", False, DoesNotRaise()), ("False", False, DoesNotRaise()), (None, False,
                                                                         DoesNotRaise()),
    (True, True, DoesNotRaise()), ("", False, DoesNotRaise()),
    ("maybe", None, pytest.raises(ApiError, match="mmc")), (3, None, pytest.raises(ApiError)),
])
def test_parse_bool(value, expected, exception):
    with exception:
        assert parse_bool("mmc", value) is expected


@pytest.mark.parametrize(("value", "expected", "exception"), [
    ("2024-01-31T12:00:00Z", "2024-01-31T12:00:00.000000Z", DoesNotRaise()),
    ("2024-01-31T14:00:00.5+02:00", "2024-01-31T12:00:00.500000Z", DoesNotRaise()),
    ("2024-01-31 12:00:00", "2024-01-31T12:00:00.000000Z", DoesNotRaise()),
    ("2024-02-30T00:00:00Z", None, pytest.raises(ApiError, match="timestamp")),
    ("now", None, pytest.raises(ApiError, match="timestamp")),
    (12, None, pytest.raises(ApiError, match="timestamp")),
])
def test_parse_timestamp(value, expected, exception):
    with exception:
        assert parse_timestamp(value) == expected


def test_filename_is_hhmm_random_name():
    names = {make_filename("car.jpg", datetime(2024, 1, 1, 9, 5, tzinfo=UTC)) for _ in range(20)}
    assert all(n.startswith("0905_") and n.endswith("_car.jpg") and len(n) == 5 + 6 + 7
               for n in names)
    assert len(names) > 1


def test_upload_file_names_are_sanitised(car_jpg):
    data, name = upload_bytes(RawForm(upload=car_jpg, upload_name="C:\\x\\..\\evil<>.jpg"),
                              Limits(10 << 20))
    assert name == "evil.jpg" and decode_upload(data).ndim == 3


@pytest.mark.parametrize("mangle", [
    lambda s: s, lambda s: s.replace("+", " "), lambda s: s.rstrip("="),
    lambda s: s.replace("+", "-").replace("/", "_"), lambda s: "\n".join(
        s[i:i + 76] for i in range(0, len(s), 76)),
    lambda s: "data:image/jpeg;base64," + s,
])
def test_base64_variants_clients_send(car_jpg, mangle):
    import base64

    text = mangle(base64.b64encode(car_jpg).decode())
    data, name = upload_bytes(RawForm(upload=text), Limits(10 << 20))
    assert decode_upload(data).shape[2] == 3 and name == "upload.jpg"


@pytest.mark.parametrize(("changes", "says"), [
    ({"port": 70000}, "server.port"), ({"max_upload_mb": 0}, "server.max_upload_mb"),
    ({"rate_limit": -1}, "server.rate_limit"), ({"queue_size": 0}, "server.queue_size"),
    ({"webhooks": ["ftp://x"]}, "server.webhooks"), ({"token": "a b"}, "server.token"),
])
def test_settings_bounds(changes, says):
    with pytest.raises(ValueError, match=says):
        ServerSettings(**changes)
    assert ServerSettings(webhooks=["http://a/"]).webhooks == ("http://a/",)


def test_rate_limiter_refills_at_the_rate():
    now = [100.0]
    limiter = RateLimiter(2.0, clock=lambda: now[0])
    assert [limiter.acquire("a") for _ in range(2)] == [0.0, 0.0]  # a one-second burst
    assert limiter.acquire("a") == pytest.approx(0.5)
    assert limiter.acquire("b") == 0.0  # per key
    now[0] += 0.5
    assert limiter.acquire("a") == 0.0


def test_usage_resets_monthly_and_persists(tmp_path):
    now = [datetime(2024, 12, 31, 23, 59, tzinfo=UTC)]
    path = tmp_path / "usage.json"
    store = UsageStore(path, clock=lambda: now[0])
    assert store.record() == (1, 1) and store.record() == (2, 2)
    stats = store.statistics()
    assert stats == {"usage": {"month": 12, "calls": 2, "year": 2024,
                               "resets_on": "2025-01-01T00:00:00Z"}, "total_calls": MAX_CALLS}
    assert store.lifetime() == 2
    store.flush()
    assert UsageStore(path, clock=lambda: now[0]).statistics()["usage"]["calls"] == 2
    now[0] = datetime(2025, 1, 1, 0, 1, tzinfo=UTC)
    reopened = UsageStore(path, clock=lambda: now[0])
    assert reopened.statistics()["usage"]["calls"] == 0
    assert reopened.record() == (1, 3)
    assert store.statistics()["usage"] == {"month": 1, "calls": 0, "year": 2025,
                                           "resets_on": "2025-02-01T00:00:00Z"}


def test_a_corrupt_usage_file_is_set_aside(tmp_path):
    path = tmp_path / "usage.json"
    path.write_text("{not json")
    store = UsageStore(path)
    assert store.record() == (1, 1)
    assert (tmp_path / "usage.corrupt").read_text() == "{not json"


@pytest.mark.parametrize(("argv", "says"), [
    (["serve", "--max-upload-mb", "0"], "server.max_upload_mb: must be > 0"),
    (["serve", "--webhook", "nothttp"], "server.webhooks"),
    (["serve", "--config", "/nonexistent/server.yaml"], "/nonexistent/server.yaml"),
])
def test_serve_errors_are_one_line(capsys, argv, says):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err and err.count("\n") == 1


@pytest.mark.parametrize("option", ["--workers", "--threads"])
def test_serve_refuses_zero_engine_threads(capsys, option):
    with pytest.raises(SystemExit) as exc:
        main(["serve", option, "0"])
    assert exc.value.code == 2
    assert f"{option}: must be at least 1, got 0" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_run_server_serves_until_stop_event(worker, tmp_path):
    port = _free_port()
    stop = threading.Event()
    settings = ServerSettings(host="127.0.0.1", port=port, data_dir=str(tmp_path))
    thread = threading.Thread(target=run_server, args=(worker, settings),
                              kwargs={"stop_event": stop, "status_provider": lambda: {"x": 1}})
    thread.start()
    try:
        body = None
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/status/", timeout=5) as r:
                    body = json.load(r)
                break
            except OSError:
                time.sleep(0.1)
        assert body is not None and body["x"] == 1
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()


def test_serve_config_file_with_command_line_overrides(tmp_path):
    from stream.cli import _parser
    from stream.http.cli import SettingsError, settings_from_args

    cfg = tmp_path / "server.yaml"
    cfg.write_text("server:\n  port: 9001\n  token: abc\n  webhooks: [http://127.0.0.1:9/h]\n")
    args = _parser().parse_args(["serve", "--config", str(cfg), "--max-upload-mb", "2"])
    assert settings_from_args(args) == ServerSettings(
        port=9001, token="abc", webhooks=("http://127.0.0.1:9/h",), max_upload_mb=2.0)
    cfg.write_text("server:\n  port: 9001\n  tokn: abc\n")
    with pytest.raises(SettingsError, match=r"server.yaml:3: server.tokn: unknown key"):
        settings_from_args(args)
