"""The Snapshot-API-compatible HTTP server: ``POST /v1/plate-reader/``, ``/info/``, statistics,
webhooks, ``/status/`` and ``/metrics``. Its settings are ``stream.config.ServerSettings``
(the config file's ``server:`` section), re-exported here with the app factory."""

from stream.config import ServerSettings
from stream.http.server import create_app, run_server

__all__ = ["ServerSettings", "create_app", "run_server"]
