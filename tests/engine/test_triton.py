"""``engine.backend: triton`` against a real Triton server.

The server is the ``tritonserver`` binary shipped in the ``nvidia-pytriton`` wheel (CPU, Python
backend only), serving the repository that ``platestream models export-triton --device cpu``
writes: each model an ONNX Runtime session inside a PyTriton-bound function bound with the
names, shapes and batching of its config.pbtxt (scripts/triton_serve_onnx.py). PyTriton pins
numpy<2, so it lives in .venv-triton (scripts/setup.sh --test); without it those tests skip.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine import Recognizer, read_image_file
from engine.backends.triton import TritonSettings
from engine.backends.triton_repo import export_triton
from engine.errors import BackendError, BackendUnavailable
from stream.engine_worker import EngineWorker

pytest.importorskip("tritonclient.grpc", reason="tritonclient[grpc] is not installed "
                    "(pip install -e .[dev])")

ROOT = Path(__file__).resolve().parents[2]
# A handful of dev images from each region (the CI suite must stay short).
IMAGES = 2, 3, 120, 200, 280


def _launcher():
    spec = importlib.util.spec_from_file_location(
        "triton_serve_onnx", ROOT / "scripts" / "triton_serve_onnx.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


@pytest.fixture(scope="module")
def triton_repo(tmp_path_factory, models_dir: Path) -> Path:
    repo = tmp_path_factory.mktemp("triton") / "repo"
    export_triton(repo, models_dir, device="cpu")
    return repo


@pytest.fixture(scope="module")
def triton_server(triton_repo: Path, tmp_path_factory):
    mod = _launcher()
    if mod.triton_python() is None:
        pytest.skip("PyTriton is not installed: scripts/setup.sh --test puts it into "
                    ".venv-triton (or set $PLATESTREAM_TRITON_PYTHON)")
    server = mod.TritonProcess(triton_repo, threads=1,
                               log_path=tmp_path_factory.mktemp("triton-log") / "triton.log")
    try:
        server.start()
    except RuntimeError as exc:
        pytest.skip(f"the Triton server cannot start on this machine: {exc}")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def images(endtoend, evaldata):
    rows = [endtoend[i] for i in IMAGES]
    return [(r["image"], read_image_file(evaldata / r["image"])) for r in rows]


def _on_triton(models_dir: Path, url: str, **kw) -> Recognizer:
    return Recognizer.from_models_dir(models_dir, backend="triton",
                                      triton=TritonSettings(url=url, **kw))


def _summary(rec) -> list[tuple]:
    return [(r.plate, r.score, r.box, r.vehicle) for r in rec.results]


def _assert_same(a, b, name: str) -> None:
    assert len(a.results) == len(b.results), name
    for x, y in zip(a.results, b.results, strict=True):
        assert x.plate == y.plate, name
        assert abs(x.score - y.score) <= 0.01, name
        for k in ("xmin", "ymin", "xmax", "ymax"):
            assert abs(getattr(x.box, k) - getattr(y.box, k)) <= 1, (name, k)
        assert (x.vehicle is None) == (y.vehicle is None), name
        if x.vehicle is not None:
            assert x.vehicle.type == y.vehicle.type, name
            for k in ("xmin", "ymin", "xmax", "ymax"):
                assert abs(getattr(x.vehicle.box, k) - getattr(y.vehicle.box, k)) <= 1, name


def test_triton_reads_the_same_plates_and_boxes_as_onnxruntime(
        triton_server, square_recognizer, images, models_dir):
    recognizer = square_recognizer  # Triton's models have the exported square input
    tri = _on_triton(models_dir, triton_server.url)
    assert tri.backend_name == f"triton:{triton_server.url}"
    plates = 0
    for name, img in images:
        local, remote = recognizer.recognize(img, mmc=True), tri.recognize(img, mmc=True)
        _assert_same(local, remote, name)
        plates += len(local.results)
    assert plates >= len(images)  # the images have plates: the comparison is not vacuous
    # OCR crops of several images in one call: Triton's batched plate_ocr
    batch = tri.recognize_batch([img for _, img in images])
    for (name, img), remote in zip(images, batch, strict=True):
        _assert_same(recognizer.recognize(img), remote, name)
    status = tri.backend_status()
    assert status["state"] == "ok" and status["failed"] == 0 and status["calls"] > 0


def test_cli_read_with_backend_triton(triton_server, evaldata, endtoend):
    image = str(evaldata / endtoend[IMAGES[0]]["image"])
    out = {}
    for backend in ("onnxruntime", "triton"):
        p = subprocess.run(
            [sys.executable, "-m", "stream.cli", "read", image, "--backend", backend,
             "--triton-url", triton_server.url, "--detector-input", "square"],
            capture_output=True, text=True, timeout=120, cwd=ROOT)
        assert p.returncode == 0, p.stderr
        out[backend] = [(r["plate"], r["box"]) for r in json.loads(p.stdout)["results"]]
    assert out["triton"] == out["onnxruntime"] and out["triton"]


async def _snapshot_and_status(worker, tmp_path, jpeg: bytes):
    import aiohttp
    from aiohttp.test_utils import TestClient, TestServer

    from stream.http.server import create_app
    from stream.server_settings import ServerSettings

    app = create_app(worker, ServerSettings(data_dir=str(tmp_path / "data")))
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        form = aiohttp.FormData()
        form.add_field("upload", jpeg, filename="car.jpg", content_type="image/jpeg")
        r = await client.post("/v1/plate-reader/", data=form)
        body = await r.json()
        st = await (await client.get("/status/")).json()
        return r.status, dict(r.headers), body, st


def test_triton_outage_drops_frames_then_recovers_by_itself(triton_server, images, models_dir,
                                                            tmp_path, evaldata):
    name, img = images[0]
    tri = _on_triton(models_dir, triton_server.url, timeout=5.0, retries=1, retry_interval=2.0)
    before = tri.recognize(img)
    worker = EngineWorker(tri, max_queue=4)
    worker.start()
    try:
        triton_server.stop()
        t0 = time.monotonic()
        with pytest.raises(BackendUnavailable, match="unreachable"):
            worker.submit(img).result(timeout=30)
        assert time.monotonic() - t0 < 11  # (1 + retries) x timeout at most, never a hang
        # within retry_interval the next frame fails at once, without touching the network
        t1 = time.monotonic()
        with pytest.raises(BackendUnavailable):
            worker.submit(img).result(timeout=30)
        assert time.monotonic() - t1 < 1.0
        stats = worker.stats()
        assert stats["unavailable"] == 2 and stats["errors"] == 0 and stats["queued"] == 0
        server = stats["inference_server"]
        assert server["state"] == "unreachable" and server["dropped"] >= 1
        assert server["outages"] == 1 and "UNAVAILABLE" in server["last_error"]
        # the Snapshot API says so too: 503 with Retry-After, and /status/ shows the state
        jpeg = (evaldata / name).read_bytes()
        status, headers, body, st = asyncio.run(_snapshot_and_status(worker, tmp_path, jpeg))
        assert status == 503 and headers.get("Retry-After") == "5", body
        assert body == {"detail": "Inference server unavailable."}
        assert st["engine"]["inference_server"]["state"] == "unreachable"

        triton_server.start()
        deadline = time.monotonic() + 60
        while True:  # bounded: the node retries every retry_interval by itself
            try:
                after = worker.submit(img).result(timeout=30)
                break
            except BackendUnavailable:
                assert time.monotonic() < deadline, "no recovery within 60 s of the restart"
                time.sleep(0.5)
        assert _summary(after) == _summary(before)
        server = worker.stats()["inference_server"]
        assert server["state"] == "ok" and server["outages"] == 1
    finally:
        worker.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_triton_at_startup_is_one_clear_error(models_dir):
    url = f"127.0.0.1:{_free_port()}"
    t0 = time.monotonic()
    with pytest.raises(BackendError, match=rf"triton: {url} not ready within 0.5 s .*"
                       r"export-triton"):
        _on_triton(models_dir, url, connect_timeout=0.5, timeout=0.5)
    assert time.monotonic() - t0 < 10
