"""Serve a ``platestream models export-triton`` repository on a real Triton server, on the CPU,
through PyTriton.

The ``nvidia-pytriton`` wheel ships a ``tritonserver`` binary with only the Python backend, so
each model of the repository runs here as an ONNX Runtime session inside a PyTriton-bound
function, bound with the names, shapes, dtypes, max batch and dynamic batcher settings of its
``config.pbtxt``. Clients see what a Triton serving that repository with its ONNX Runtime
backend shows them (same model names, same tensors, same batching, same gRPC protocol); the
difference is only which Triton backend computes the tensors.

Used by the Triton tests (tests/engine/test_triton_backend.py) and scripts/bench_triton.py.
It needs a Python with ``nvidia-pytriton`` and ``onnxruntime``: PyTriton pins numpy<2, so
``scripts/setup.sh --test`` installs it into its own environment, ``.venv-triton``.

    platestream models export-triton --device cpu REPO
    .venv-triton/bin/python scripts/triton_serve_onnx.py --repository REPO --grpc-port 8001 \
        --http-port 8000 --metrics-port 8002

Prints ``READY grpc=PORT`` on stdout once the models are served; stops on SIGTERM/SIGINT.
``TritonProcess`` (stdlib only) starts/stops/restarts it as a subprocess for tests and
benchmarks, on free loopback ports.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.benchlib import stop_processes  # noqa: E402

TRITON_PYTHON_ENV = "PLATESTREAM_TRITON_PYTHON"


def triton_python() -> Path | None:
    """The Python with PyTriton: $PLATESTREAM_TRITON_PYTHON, else .venv-triton's, else None."""
    env = os.environ.get(TRITON_PYTHON_ENV)
    path = Path(env) if env else ROOT / ".venv-triton" / "bin" / "python"
    return path if path.is_file() else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TritonProcess:
    """This script as a subprocess: a real Triton serving ``repository`` on 127.0.0.1.

    ``start()`` returns once every model answers ready (or raises RuntimeError with the log's
    tail); ``stop()`` ends the whole process group; a restart keeps the same ports.
    """

    def __init__(self, repository: Path, *, python: Path | None = None, threads: int = 2,
                 log_path: Path | None = None) -> None:
        self.repository = Path(repository)
        self.python = python or triton_python()
        if self.python is None:
            raise RuntimeError("no Python with PyTriton: run scripts/setup.sh --test "
                               f"(.venv-triton) or set ${TRITON_PYTHON_ENV}")
        self.threads = threads
        self.grpc_port, self.http_port, self.metrics_port = (_free_port() for _ in range(3))
        self.log_path = log_path or Path(os.environ.get("TMPDIR", "/tmp")) / (
            f"triton-{self.grpc_port}.log")
        self.models = sorted(p.parent.name for p in self.repository.glob("*/config.pbtxt"))
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def start(self, timeout: float = 180.0) -> None:
        cmd = [str(self.python), __file__, "--repository", str(self.repository),
               "--grpc-port", str(self.grpc_port), "--http-port", str(self.http_port),
               "--metrics-port", str(self.metrics_port), "--threads", str(self.threads)]
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it until it ends
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Triton exited with {self.proc.returncode}: {self.tail()}")
            if all(self._ready(m) for m in self.models):
                return
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"Triton not ready within {timeout:g} s: {self.tail()}")

    def _ready(self, model: str) -> bool:
        url = f"http://127.0.0.1:{self.http_port}/v2/models/{model}/ready"
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def stop(self, timeout: float = 20.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        pgid = os.getpgid(proc.pid)
        stop_processes([proc], timeout)
        try:  # Triton and its Python-backend stubs are in this process's group
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def tail(self, n: int = 1500) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return "(no log)"


_DTYPES = {"TYPE_FP32": np.float32, "TYPE_FP16": np.float16, "TYPE_UINT8": np.uint8,
           "TYPE_INT64": np.int64, "TYPE_INT32": np.int32}


def _session(path: Path, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def _read_config(path: Path):
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())


def _tensors(specs):
    from pytriton.model_config import Tensor

    return [Tensor(name=t.name, dtype=_DTYPES[model_config_name(t.data_type)],
                   shape=tuple(int(d) for d in t.dims)) for t in specs]


def model_config_name(value: int) -> str:
    from tritonclient.grpc import model_config_pb2

    return model_config_pb2.DataType.Name(value)


def _infer_fn(sess, names: list[str], batched: bool):
    def infer(requests):
        if not batched or len(requests) == 1:
            return [dict(zip(names, sess.run(names, dict(r)), strict=True)) for r in requests]
        # Triton's dynamic batcher handed over several requests: one ONNX Runtime call for
        # all of them, split back per request (what Triton's ONNX Runtime backend does).
        sizes = [len(next(iter(r.values()))) for r in requests]
        feeds = {k: np.concatenate([r[k] for r in requests]) for k in requests[0]}
        outs = sess.run(names, feeds)
        bounds = np.cumsum([0, *sizes])
        return [{n: o[a:b] for n, o in zip(names, outs, strict=True)}
                for a, b in zip(bounds[:-1], bounds[1:], strict=True)]

    return infer


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repository", required=True, type=Path,
                   help="a repository written by `platestream models export-triton --device cpu`")
    p.add_argument("--grpc-port", type=int, required=True)
    p.add_argument("--http-port", type=int, required=True)
    p.add_argument("--metrics-port", type=int, required=True)
    p.add_argument("--threads", type=int, default=2, help="ONNX Runtime threads per model")
    p.add_argument("--workspace", help="PyTriton workspace (default: a temporary directory)")
    args = p.parse_args(argv)
    configs = sorted(args.repository.glob("*/config.pbtxt"))
    if not configs:
        print(f"triton_serve_onnx: no */config.pbtxt in {args.repository}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING)
    # Triton's Python-backend stub links libpython3.X.so; make it load this interpreter's
    # (a pyenv/venv Python next to a distribution's libpython of another patch level fails
    # inside the stub's multiprocessing otherwise).
    libdir = sysconfig.get_config_var("LIBDIR")
    if libdir:
        os.environ["LD_LIBRARY_PATH"] = os.pathsep.join(
            [libdir, *filter(None, [os.environ.get("LD_LIBRARY_PATH")])])

    from pytriton.model_config import DynamicBatcher, ModelConfig
    from pytriton.triton import Triton, TritonConfig

    config = TritonConfig(
        grpc_address="127.0.0.1", grpc_port=args.grpc_port,
        http_address="127.0.0.1", http_port=args.http_port,
        metrics_address="127.0.0.1", metrics_port=args.metrics_port, allow_metrics=False,
        exit_timeout_secs=2, log_verbose=0,
    )
    workspace = args.workspace or Path(tempfile.mkdtemp(prefix="pytriton-")) / "ws"
    with Triton(config=config, workspace=workspace) as triton:
        for path in configs:
            cfg = _read_config(path)
            if cfg.platform != "onnxruntime_onnx":
                print(f"triton_serve_onnx: {path}: only ONNX models can be served here "
                      f"(platform {cfg.platform})", file=sys.stderr)
                return 2
            sess = _session(path.parent / "1" / "model.onnx", args.threads)
            batched = cfg.max_batch_size > 0
            db = cfg.dynamic_batching
            triton.bind(
                model_name=cfg.name,
                infer_func=_infer_fn(sess, [o.name for o in cfg.output], batched),
                inputs=_tensors(cfg.input),
                outputs=_tensors(cfg.output),
                config=ModelConfig(
                    batching=batched, max_batch_size=cfg.max_batch_size or 1,
                    batcher=DynamicBatcher(
                        max_queue_delay_microseconds=db.max_queue_delay_microseconds,
                        preferred_batch_size=list(db.preferred_batch_size) or None)),
                strict=True,
            )
        stop = []
        signal.signal(signal.SIGTERM, lambda *_: (stop.append(1), triton.stop()))
        print(f"READY grpc={args.grpc_port}", flush=True)
        triton.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
