"""``platestream run CONFIG`` (the stream pipeline) and ``platestream check CONFIG``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from stream.cli import add_engine_args, build_worker, engine_settings
from stream.config import StreamConfig, load_config
from stream.state import writable_dir

__all__ = ["register"]

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser("run", help="watch the cameras/videos of a YAML config, emit plate events")
    r.add_argument("config", metavar="CONFIG", help="YAML config (see configs/demo.yaml)")
    r.add_argument("--data-dir", help="where relative video paths are looked up before the "
                   "working directory (default: $PLATESTREAM_DATA)")
    r.add_argument("--print-events", nargs="?", const="json", choices=("json", "short"),
                   help="print each event on stdout: one JSON line (default) or a short line")
    r.add_argument("--drain-timeout", type=float, default=15.0, metavar="S",
                   help="on a clean stop (every video ended, Ctrl-C, SIGTERM): open tracks become "
                   "events and the outputs get up to S seconds to deliver them before exiting "
                   "(undelivered events stay in the spool)")
    add_engine_args(r, worker=True)
    r.set_defaults(func=_cmd_run)

    c = sub.add_parser("check", help="validate a YAML config without running it")
    c.add_argument("config", metavar="CONFIG")
    c.add_argument("--data-dir", help="see `run --help`")
    c.set_defaults(func=_cmd_check)


def data_dir(args: argparse.Namespace) -> str | None:
    return args.data_dir or os.environ.get("PLATESTREAM_DATA") or None


def _cmd_check(args: argparse.Namespace) -> int:
    from stream.sources.reader import probe_file

    cfg = load_config(args.config, data_dir=data_dir(args))
    problems = [f"cameras.{n}.url: cannot read video file {c.url}: {why}"
                for n, c in cfg.cameras.items()
                if c.active and not c.live and (why := probe_file(c.url))]
    for line in problems:
        print(f"platestream: {args.config}: {line}", file=sys.stderr)
    if problems:
        return 1
    cams = ", ".join(f"{n}{'' if c.active else ' (inactive)'}" for n, c in cfg.cameras.items())
    print(f"{args.config}: OK — cameras: {cams}; outputs: {', '.join(cfg.outputs) or 'none'}; "
          f"server: {f'port {cfg.server.port}' if cfg.server.enabled else 'off'}; "
          f"store: {_store_line(cfg)}; known plates: "
          f"{', '.join(cfg.known_plates) or 'none'}")
    return 0


def _store_line(cfg: StreamConfig) -> str:
    if not cfg.store.enabled:
        return "off"
    return cfg.store.safe_url or "sqlite"


def _print_json(event) -> None:  # noqa: ANN001 - a PlateEvent
    print(json.dumps(event.data), flush=True)


def _print_short(event) -> None:  # noqa: ANN001 - a PlateEvent
    """One human line per event (not a Plate Recognizer shape: read from the typed event)."""
    r = event.recognition.results[0]
    at = f" at {event.position_sec:.2f} s" if event.position_sec is not None else ""
    vehicle = r.vehicle.type if r.vehicle is not None and r.vehicle.score else "-"
    print(f"{event.recognition.timestamp}  {event.camera_id}: {r.plate.upper()}  score "
          f"{r.score:.3f}{at}  vehicle {vehicle}  direction {event.direction}  id {event.id}",
          flush=True)


def _cmd_run(args: argparse.Namespace) -> int:
    from prometheus_client import REGISTRY

    from stream.pipeline import Pipeline
    from stream.supervisor import Supervisor, bind_server

    cfg = load_config(args.config, data_dir=data_dir(args))
    writable_dir(cfg.spool_path.parent, "spool directory")
    writable_dir(cfg.output_dir, "output directory")
    if cfg.server.enabled:
        writable_dir(cfg.server.data_path, "server data directory")
    sock = None
    try:
        if cfg.server.enabled:  # bind first, then load the models: a taken port fails at once
            sock = bind_server(cfg.server)
    except OSError as exc:  # port taken, address not ours: one line, no traceback
        print(f"platestream: server: cannot listen on {cfg.server.host}:{cfg.server.port}: "
              f"{exc.strerror or exc}", file=sys.stderr)
        return 1
    worker = build_worker(engine_settings(args, cfg.engine, base=Path(cfg.source).parent))
    printer = {"json": _print_json, "short": _print_short}.get(args.print_events or "")
    pipeline = Pipeline(cfg, worker, on_event=printer, registry=REGISTRY)
    supervisor = Supervisor(pipeline, worker, server=cfg.server if cfg.server.enabled else None,
                            drain_timeout=args.drain_timeout, sock=sock)
    try:
        supervisor.run()
    except OSError as exc:
        print(f"platestream: server: cannot listen on {cfg.server.host}:{cfg.server.port}: "
              f"{exc.strerror or exc}", file=sys.stderr)
        return 1
    if failed := pipeline.failed():
        print(f"platestream: video file failed: {', '.join(failed)} (see the log)",
              file=sys.stderr)
        return 1
    return 0
