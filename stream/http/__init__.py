"""The Snapshot-API-compatible HTTP server: ``POST /v1/plate-reader/``, ``/info/``, statistics,
webhooks, ``/status/`` and ``/metrics``. The app is ``stream.http.server.create_app``; its
settings are ``stream.config.ServerSettings`` (the config file's ``server:`` section)."""
