"""The Snapshot-API-compatible HTTP server: ``POST /v1/plate-reader/``, ``/info/``, statistics,
webhooks, ``/status/`` and ``/metrics``.

``create_app`` and ``run_server`` are imported lazily so that loading ``ServerSettings`` (as
the config loader does) does not pull in aiohttp and the engine.
"""

from typing import Any

from stream.http.settings import ServerSettings

__all__ = ["ServerSettings", "create_app", "run_server"]


def __getattr__(name: str) -> Any:
    if name in ("create_app", "run_server"):
        from stream.http import server

        return getattr(server, name)
    raise AttributeError(f"module 'stream.http' has no attribute {name!r}")
