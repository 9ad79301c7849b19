"""``platestream serve``: the Snapshot-compatible HTTP API on its own."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path

from stream.http.settings import ServerSettings

__all__ = ["register"]

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    from stream.cli import add_engine_args, add_worker_arg
    from stream.engine_worker import DEFAULT_WORKERS

    p = subparsers.add_parser(
        "serve", help="serve the Snapshot API (POST /v1/plate-reader/) over HTTP",
        description="Serve a Plate Recognizer Snapshot-compatible API. Options given here "
        "override the config file's server: section.",
    )
    p.add_argument("--host", help="address to listen on (default 0.0.0.0)")
    p.add_argument("--port", type=int, help="TCP port (default 8080)")
    p.add_argument("--token", help="require `Authorization: Token TOKEN` on API calls")
    p.add_argument("--max-upload-mb", type=float, help="largest image accepted, MiB (default 5)")
    p.add_argument("--max-pixels", type=int, metavar="N",
                   help="largest image accepted, in pixels, read from its header before "
                        "decoding (default 16000000)")
    p.add_argument("--body-timeout", type=float, metavar="S",
                   help="seconds a client may take to send its request (default 15)")
    p.add_argument("--rate-limit", type=float, metavar="PER_S",
                   help="lookups per second per token (default: unlimited)")
    p.add_argument("--queue-size", type=int, help="requests waiting for inference (default 64)")
    p.add_argument("--max-batch", type=int, metavar="N",
                   help="images per engine call (default 2: bounds the models' memory)")
    p.add_argument("--batch-window-ms", type=float,
                   help="how long to wait to batch concurrent requests (default 5)")
    p.add_argument("--webhook", action="append", dest="webhooks", metavar="URL",
                   help="POST each result to URL (repeatable)")
    p.add_argument("--data-dir", help="usage counter and webhook spool directory (default: the "
                   "state directory, $PLATESTREAM_STATE or ~/.local/state/platestream)")
    p.add_argument("--config", metavar="FILE", help="YAML config; its server: section is used")
    add_engine_args(p)
    add_worker_arg(p)
    p.set_defaults(func=_cmd_serve, workers=DEFAULT_WORKERS)


_OVERRIDES = ("host", "port", "token", "max_upload_mb", "rate_limit", "queue_size",
              "batch_window_ms", "webhooks", "data_dir", "max_pixels", "body_timeout",
              "max_batch")


def settings_from_args(args: argparse.Namespace) -> ServerSettings:
    """The config file's server section (if any) with the command-line options on top.

    Raises:
        SettingsError: a bad option or config file, with a one-line message.
    """
    base = ServerSettings()
    if args.config:
        base = _load_config_server(args.config)
    changes = {k: getattr(args, k) for k in _OVERRIDES if getattr(args, k) is not None}
    try:
        return dataclasses.replace(base, **changes)
    except ValueError as exc:
        raise SettingsError(str(exc)) from None


def _load_config_server(path: str) -> ServerSettings:
    """The ``server:`` section of a stream config (checked whole by ``stream.config``), or of a
    file holding only ``server:`` (the stream loader would ask for cameras)."""
    from stream import config, yamlconf

    try:
        root = yamlconf.compose_file(Path(path))
        top = root.value if isinstance(root.value, dict) else {}
        if "cameras" in top:
            return config.load_config(path).server
        if "server" not in top:
            yamlconf.fail(root, (), "no 'server:' section")
        return yamlconf.build(ServerSettings, top["server"], ("server",))
    except yamlconf.ConfigError as exc:  # names the file line and the key; one line
        raise SettingsError(str(exc)) from None


class SettingsError(Exception):
    pass


def _cmd_serve(args: argparse.Namespace) -> int:
    from engine.errors import EngineError
    from stream.cli import build_recognizer
    from stream.engine_worker import EngineWorker
    from stream.http.server import run_server
    from stream.state import writable_dir

    try:
        settings = settings_from_args(args)
    except (SettingsError, EngineError) as exc:
        print(f"platestream: {exc}", file=sys.stderr)
        return 2
    writable_dir(settings.data_path, "data directory")
    recognizer = build_recognizer(args)
    worker = EngineWorker(recognizer, max_queue=settings.queue_size,
                          max_batch=settings.max_batch,
                          batch_window_ms=settings.batch_window_ms, workers=args.workers)
    store, known = _open_store(args, settings)  # raises StoreError: one line from main
    worker.start()
    try:
        run_server(worker, settings, store=store, known=known)
    except OSError as exc:
        print(f"platestream: cannot listen on {settings.host}:{settings.port}: "
              f"{exc.strerror or exc}", file=sys.stderr)
        return 1
    finally:
        worker.stop()
        if store is not None:
            store.close()
    return 0


def _open_store(args: argparse.Namespace, settings: ServerSettings):  # noqa: ANN202
    """The event store (in ``data_dir``) and known plates of ``serve``: the config file's
    ``store:`` and ``known_plates:`` sections when it has cameras, else the defaults."""
    from stream.known_plates import KnownPlates
    from stream.store import StoreConfig, open_store

    store_cfg, lists, base = StoreConfig(), {}, Path.cwd()
    if args.config:
        from stream import config, yamlconf

        root = yamlconf.compose_file(Path(args.config))
        if isinstance(root.value, dict) and "cameras" in root.value:
            cfg = config.load_config(args.config)
            store_cfg, lists, base = cfg.store, cfg.known_plates, Path(args.config).parent
    store = open_store(store_cfg, settings.data_path) if store_cfg.enabled else None
    return store, KnownPlates.from_config(lists, base, backend=store)
