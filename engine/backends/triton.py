"""NVIDIA Triton Inference Server backend: the models run on a (GPU) server, over gRPC.

A CPU-only node decodes, tracks and reads plates locally while one Triton server runs the
three models for many nodes (``platestream models export-triton`` writes its model
repository). Each model is one ``TritonBackend``; the three of a recognizer share one
``TritonLink``, which owns the gRPC client and the server's health as this node sees it:

- every call has a deadline (``timeout``); a call failing on the network is retried
  ``retries`` times at once (a restarted server, a dropped connection);
- once the server is unreachable, calls fail at once with ``BackendUnavailable`` (the frame
  is dropped, nothing queues) and one call every ``retry_interval`` seconds tries again, so
  the node recovers by itself when the server returns;
- ``status()`` says ``ok`` / ``unreachable`` with since when, the last error and counters
  (for ``/status/``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from engine.backends.base import TensorSpec
from engine.errors import BackendError, BackendUnavailable

__all__ = ["TritonSettings", "TritonLink", "TritonBackend", "BackendUnavailable",
           "TRITON_MISSING"]

log = logging.getLogger(__name__)

TRITON_MISSING = ("backend triton needs the Triton client: pip install 'tritonclient[grpc]' "
                  "(or platestream[triton])")

_DTYPES = {
    "FP32": np.dtype(np.float32), "FP16": np.dtype(np.float16), "UINT8": np.dtype(np.uint8),
    "INT8": np.dtype(np.int8), "INT32": np.dtype(np.int32), "INT64": np.dtype(np.int64),
    "BOOL": np.dtype(np.bool_),
}
_TRITON_NAMES = {v: k for k, v in _DTYPES.items()}
# gRPC codes that mean "the server (or the model on it) is not there right now", as opposed
# to a request this node got wrong (INVALID_ARGUMENT...).
_UNAVAILABLE_CODES = ("UNAVAILABLE", "DEADLINE_EXCEEDED", "CANCELLED", "RESOURCE_EXHAUSTED")
_NOT_READY_WORDS = ("unknown model", "not ready", "not found", "unavailable", "is not loaded")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class TritonSettings:
    """How this node talks to Triton (the ``engine.triton`` config section).

    Attributes:
        url: ``host:port`` of Triton's gRPC endpoint (8001 in the NGC image).
        timeout: seconds one inference call may take; past it the frame is dropped.
        retries: immediate retries of a call that failed on the network.
        retry_interval: while the server is unreachable, calls fail at once and one call
            every this many seconds tries again.
        connect_timeout: how long startup waits for the server and its three models.
        ssl: use TLS on the gRPC channel (a server behind a TLS proxy).
    """

    url: str = field(default="127.0.0.1:8001", metadata={
        "help": "Triton gRPC endpoint host:port"})
    timeout: float = field(default=5.0, metadata={
        "gt": 0, "le": 600, "help": "seconds per inference call before the frame is dropped"})
    retries: int = field(default=1, metadata={
        "ge": 0, "le": 10, "help": "immediate retries of a call that failed on the network"})
    retry_interval: float = field(default=2.0, metadata={
        "gt": 0, "le": 600, "help": "seconds between tries while Triton is unreachable"})
    connect_timeout: float = field(default=30.0, metadata={
        "ge": 0, "le": 3600, "help": "seconds startup waits for Triton and its models"})
    ssl: bool = False


def _grpc_module():
    try:
        import tritonclient.grpc as grpcclient
    except ImportError:
        raise BackendError(TRITON_MISSING) from None
    return grpcclient


def _is_unavailable(exc: Exception) -> bool:
    status = str(getattr(exc, "status", lambda: "")() or "")
    message = str(getattr(exc, "message", lambda: str(exc))() or exc).lower()
    if any(code in status for code in _UNAVAILABLE_CODES):
        return True
    return any(w in message for w in _NOT_READY_WORDS)


def _describe(exc: Exception) -> str:
    status = str(getattr(exc, "status", lambda: "")() or "").replace("StatusCode.", "")
    message = str(getattr(exc, "message", lambda: str(exc))() or exc)
    message = message.splitlines()[0] if message else type(exc).__name__
    return f"{status}: {message}" if status else message


class TritonLink:
    """One gRPC client to one Triton server and this node's view of its health."""

    def __init__(self, settings: TritonSettings) -> None:
        self.settings = settings
        self._grpc = _grpc_module()
        self._lock = threading.Lock()
        self._client: Any = None
        self.state = "connecting"
        self._since = time.time()
        self._next_try = 0.0
        self._last_error: str | None = None
        self._counts = {"calls": 0, "failed": 0, "dropped": 0, "outages": 0}

    # --- the client -------------------------------------------------------------------
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                ms = int(min(self.settings.retry_interval, 5.0) * 1000)
                self._client = self._grpc.InferenceServerClient(
                    self.settings.url, ssl=self.settings.ssl,
                    channel_args=[
                        # reconnect as fast as we retry (gRPC's default backs off to 120 s)
                        ("grpc.initial_reconnect_backoff_ms", min(ms, 500)),
                        ("grpc.min_reconnect_backoff_ms", min(ms, 500)),
                        ("grpc.max_reconnect_backoff_ms", ms),
                        ("grpc.max_send_message_length", 2**31 - 1),
                        ("grpc.max_receive_message_length", 2**31 - 1),
                        ("grpc.keepalive_time_ms", 10_000),
                        ("grpc.keepalive_timeout_ms", 5_000),
                    ],
                )
            return self._client

    def _drop_client(self) -> None:
        with self._lock:
            old, self._client = self._client, None
        if old is not None:
            try:
                old.close()
            except Exception:  # noqa: BLE001 - a broken channel may fail to close; it is gone
                pass

    # --- health -----------------------------------------------------------------------
    def _mark_ok(self) -> None:
        with self._lock:
            self._counts["calls"] += 1
            if self.state == "ok":
                return
            was, self.state, self._since = self.state, "ok", time.time()
        if was == "unreachable":
            log.warning("triton: %s is reachable again; inference resumes", self.settings.url)
        else:
            log.info("triton: connected to %s", self.settings.url)

    def _mark_down(self, error: str) -> None:
        with self._lock:
            self._counts["calls"] += 1
            self._counts["failed"] += 1
            self._last_error = error
            self._next_try = time.monotonic() + self.settings.retry_interval
            if self.state == "unreachable":
                return
            self.state, self._since = "unreachable", time.time()
            self._counts["outages"] += 1
        log.warning("triton: %s unreachable (%s); frames are dropped, retrying every %g s",
                    self.settings.url, error, self.settings.retry_interval)

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {
                "kind": "triton",
                "url": self.settings.url,
                "state": self.state,
                "since": round(self._since, 3),
                "last_error": self._last_error,
                **self._counts,
            }

    # --- calls ------------------------------------------------------------------------
    def call(self, what: str, fn: Callable[[Any], T]) -> T:
        """Run ``fn(client)`` under this link's retry and fail-fast rules.

        Raises:
            BackendUnavailable: the server is (still) unreachable; nothing ran.
            BackendError: the server answered with an error about the request itself.
        """
        with self._lock:
            if self.state == "unreachable" and time.monotonic() < self._next_try:
                self._counts["dropped"] += 1
                raise BackendUnavailable(
                    f"triton at {self.settings.url} is unreachable: {self._last_error}")
        error = ""
        for attempt in range(self.settings.retries + 1):
            try:
                out = fn(self.client())
            except self._grpc_errors() as exc:
                if not _is_unavailable(exc):
                    with self._lock:
                        self._counts["calls"] += 1
                        self._counts["failed"] += 1
                        self._last_error = f"{what}: {_describe(exc)}"
                    raise BackendError(f"triton {what}: {_describe(exc)}") from None
                error = f"{what}: {_describe(exc)}"
                if attempt < self.settings.retries:
                    log.debug("triton: %s failed (%s), retrying", what, error)
                    self._drop_client()  # a fresh channel, not one stuck in its backoff
                continue
            self._mark_ok()
            return out
        self._mark_down(error)
        raise BackendUnavailable(f"triton at {self.settings.url} is unreachable: {error}")

    def _grpc_errors(self) -> tuple[type[Exception], ...]:
        from tritonclient.utils import InferenceServerException

        return (InferenceServerException,)

    def wait_ready(self, models: list[str]) -> None:
        """Block until the server has every one of ``models`` ready, or ``connect_timeout``.

        Raises:
            BackendError: not ready in time (says which model and the last error).
        """
        deadline = time.monotonic() + self.settings.connect_timeout
        waiting = list(models)
        last = "no answer"
        logged = False
        while True:
            try:
                client = self.client()
                waiting = [m for m in waiting
                           if not client.is_model_ready(m, client_timeout=self.settings.timeout)]
                if not waiting:
                    self._mark_ok()
                    return
                last = f"model {waiting[0]!r} is not ready on the server"
            except self._grpc_errors() as exc:
                last = _describe(exc)
                self._drop_client()
            if time.monotonic() >= deadline:
                self._mark_down(last)
                raise BackendError(
                    f"triton: {self.settings.url} not ready within "
                    f"{self.settings.connect_timeout:g} s ({last}); is the server running "
                    "with the repository of `platestream models export-triton`? "
                    "(engine.triton.url, engine.triton.connect_timeout)")
            if not logged:
                log.info("triton: waiting for %s (%s)", self.settings.url, last)
                logged = True
            time.sleep(min(1.0, max(0.05, deadline - time.monotonic())))

    def close(self) -> None:
        self._drop_client()


class TritonBackend:
    """One model on a Triton server, behind the engine's Backend protocol.

    Args:
        link: the shared client and health of the server.
        model: the model's name in the server's repository.
    """

    def __init__(self, link: TritonLink, model: str) -> None:
        self.link = link
        self.model = model
        self.name = f"triton:{link.settings.url}"
        timeout = link.settings.timeout

        def fetch(client: Any) -> tuple[dict, dict]:
            return (client.get_model_metadata(model, as_json=True, client_timeout=timeout),
                    client.get_model_config(model, as_json=True, client_timeout=timeout))

        try:
            meta, config = link.call(f"model {model} metadata", fetch)
        except BackendUnavailable as exc:
            raise BackendError(f"{exc} (while loading model {model!r})") from None
        config = config.get("config", config)
        batched = int(config.get("max_batch_size", 0) or 0)
        self.max_batch = batched or 1
        self._inputs: dict[str, TensorSpec] = {}
        self._types: dict[str, str] = {}
        for t in meta.get("inputs", []):
            dims = tuple(int(d) for d in t["shape"])
            shape = tuple(None if d < 0 else d for d in dims)
            # With max_batch_size > 0 the metadata already shows the batch as -1.
            self._inputs[t["name"]] = TensorSpec(shape, _DTYPES.get(t["datatype"],
                                                                    np.dtype(np.float32)))
            self._types[t["name"]] = t["datatype"]
        self._outputs = [t["name"] for t in meta.get("outputs", [])]
        if not self._inputs or not self._outputs:
            raise BackendError(f"triton: model {model!r} on {link.settings.url} has no "
                               "inputs or outputs in its metadata")

    def inputs(self) -> dict[str, TensorSpec]:
        return dict(self._inputs)

    def status(self) -> dict[str, Any]:
        return self.link.status()

    def infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        grpc = self.link._grpc
        inputs = []
        for name, arr in feeds.items():
            arr = np.ascontiguousarray(arr)
            dtype = self._types.get(name) or _TRITON_NAMES.get(arr.dtype)
            if dtype is None:
                raise BackendError(f"triton {self.model}: no Triton type for {arr.dtype}")
            tensor = grpc.InferInput(name, list(arr.shape), dtype)
            tensor.set_data_from_numpy(arr)
            inputs.append(tensor)
        wanted = [grpc.InferRequestedOutput(n) for n in self._outputs]
        timeout = self.link.settings.timeout

        def run(client: Any) -> Any:
            return client.infer(self.model, inputs, outputs=wanted, client_timeout=timeout)

        result = self.link.call(f"{self.model} inference", run)
        # as_numpy views the response buffer read-only; the caller owns (may edit) the arrays
        return {n: np.array(result.as_numpy(n)) for n in self._outputs}

    def close(self) -> None:
        self.link.close()
