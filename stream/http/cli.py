"""``platestream serve``: the Snapshot-compatible HTTP API on its own."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path

from engine.settings import EngineSettings
from stream.config import ServerSettings

__all__ = ["register"]

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    from stream.cli import add_engine_args

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
    p.add_argument("--webhook", action="append", dest="webhooks", metavar="URL",
                   help="POST each result to URL (repeatable)")
    p.add_argument("--data-dir", help="usage counter and webhook spool directory (default: the "
                   "state directory, $PLATESTREAM_STATE or ~/.local/state/platestream)")
    p.add_argument("--config", metavar="FILE",
                   help="YAML config; its server: and engine: sections are used")
    add_engine_args(p, worker=True)
    p.set_defaults(func=_cmd_serve)


_OVERRIDES = ("host", "port", "token", "max_upload_mb", "rate_limit", "queue_size",
              "webhooks", "data_dir", "max_pixels", "body_timeout")


def settings_from_args(args: argparse.Namespace) -> ServerSettings:
    """The config file's server section (if any) with the command-line options on top.

    Raises:
        SettingsError: a bad option or config file, with a one-line message.
    """
    base = _load_config_sections(args.config)[0] if args.config else ServerSettings()
    changes = {k: getattr(args, k) for k in _OVERRIDES if getattr(args, k) is not None}
    try:
        return dataclasses.replace(base, **changes)
    except ValueError as exc:
        raise SettingsError(str(exc)) from None


def _load_config_sections(path: str) -> tuple[ServerSettings, EngineSettings]:
    """The ``server:`` and ``engine:`` sections of a stream config (checked whole by
    ``stream.config``), or of a file holding only those (the stream loader would ask for
    cameras)."""
    from stream import config, yamlconf

    try:
        root = yamlconf.compose_file(Path(path))
        top = root.value if isinstance(root.value, dict) else {}
        if "cameras" in top:
            cfg = config.load_config(path)
            return cfg.server, cfg.engine
        yamlconf.check_keys(top, ["server", "engine"], ())
        if "server" not in top:
            yamlconf.fail(root, (), "no 'server:' section")
        engine = (yamlconf.build(EngineSettings, top["engine"], ("engine",)) if "engine" in top
                  else EngineSettings(max_batch=SERVE_MAX_BATCH))
        return config.load_server_section(top["server"]), engine
    except yamlconf.ConfigError as exc:  # names the file line and the key; one line
        raise SettingsError(str(exc)) from None


SERVE_MAX_BATCH = 2  # measured with scripts/hostile_load.py: peak RSS 541 MB (docs/http)


class SettingsError(Exception):
    pass


def _cmd_serve(args: argparse.Namespace) -> int:
    from engine.errors import EngineError
    from stream.cli import build_worker, engine_settings
    from stream.http.server import run_server
    from stream.state import writable_dir

    try:
        settings = settings_from_args(args)
        # the API's own default batch: 2 images per engine call bound the models' memory
        section = (_load_config_sections(args.config)[1] if args.config
                   else EngineSettings(max_batch=SERVE_MAX_BATCH))
        base = Path(args.config).parent if args.config else None
        engine = engine_settings(args, section, base=base)
    except (SettingsError, EngineError) as exc:
        print(f"platestream: {exc}", file=sys.stderr)
        return 2
    writable_dir(settings.data_path, "data directory")
    # the API's queue_size bounds the engine queue too (429 beyond it)
    worker = build_worker(engine, max_queue=settings.queue_size)
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
