"""The ``platestream`` command line.

Subcommands are registered by the modules that implement them (a ``register(subparsers)``
function), so each area owns its own arguments. Errors end as one line on stderr and a
non-zero exit code, never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

from engine import __version__
from engine.errors import EngineConfigError, EngineError
from engine.settings import EngineSettings
from stream.redact import install_log_filter, scrub
from stream.state import resolve_state_dir

__all__ = ["main", "add_engine_args", "engine_settings", "build_recognizer", "build_worker"]

# Modules that add subcommands (each has ``register(subparsers)``).
_SUBCOMMAND_MODULES = ("stream.http.cli", "stream.run_cli", "trt_builder.cli", "stream.hub.cli")


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1 (0 or less would silently mean "the default")."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _flag_type(hint: Any) -> dict[str, Any]:
    """argparse keywords for an EngineSettings field's type (Literal: choices)."""
    if get_origin(hint) is Literal:
        return {"choices": list(get_args(hint))}
    tp = next((a for a in get_args(hint) if a is not type(None)), hint)  # X | None -> X
    if tp is int:
        return {"type": positive_int}
    if tp is float:
        return {"type": float}
    return {}


def add_engine_args(p: argparse.ArgumentParser, *, worker: bool = False) -> None:
    """The engine flags, one per ``EngineSettings`` field marked ``flag`` (``worker``: also
    the engine worker's). Each says its environment variable."""
    hints = get_type_hints(EngineSettings)
    for f in fields(EngineSettings):
        kind = f.metadata.get("flag")
        if kind != "engine" and not (worker and kind == "worker"):
            continue
        env = f.metadata.get("env")
        p.add_argument("--" + f.name.replace("_", "-"), default=None, **_flag_type(hints[f.name]),
                       help=f.metadata["help"] + (f"; ${env}" if env else ""))
    p.add_argument("--triton-url", metavar="HOST:PORT", default=None,
                   help=f"Triton gRPC endpoint for --backend triton; ${TRITON_URL_ENV}")


TRITON_URL_ENV = "PLATESTREAM_TRITON_URL"  # engine.triton.url, the one nested setting with a flag


def engine_settings(args: argparse.Namespace, section: EngineSettings | None = None, *,
                    base: Path | None = None,
                    env: Mapping[str, str] | None = None) -> EngineSettings:
    """The engine settings of a command: command line > environment > config file's
    ``engine:`` section (relative paths from ``base``, its folder) > default.

    Raises:
        EngineConfigError: an environment variable with a value the field does not accept.
    """
    env = os.environ if env is None else env
    section = section or EngineSettings()
    hints = get_type_hints(EngineSettings)
    values: dict[str, Any] = {}
    for f in fields(EngineSettings):
        name, var = f.name, f.metadata.get("env")
        if getattr(args, name, None) is not None:
            values[name] = getattr(args, name)
        elif var and env.get(var):
            choices = _flag_type(hints[name]).get("choices")
            if choices and env[var] not in choices:
                raise EngineConfigError(f"${var}: expected one of {', '.join(choices)}, "
                                        f"got {env[var]!r}")
            values[name] = env[var]
        else:
            value = getattr(section, name)
            if value is not None and f.metadata.get("path") and base is not None:
                value = str(base / Path(value).expanduser())  # absolute paths stay as they are
            values[name] = value
    if values["engines_dir"] is None:  # where `platestream build-engines` writes by default
        values["engines_dir"] = str(resolve_state_dir() / "engines")
    url = getattr(args, "triton_url", None) or env.get(TRITON_URL_ENV)
    if url:
        values["triton"] = replace(values["triton"], url=url)
    return EngineSettings(**values)


def default_threads(workers: int = 1) -> int:
    """Intra-op threads per model run so that all engine workers together use every core."""
    return max(1, (os.cpu_count() or 2) // max(1, workers))


def build_recognizer(settings: EngineSettings, *, workers: int | None = None):
    """The Recognizer ``settings`` ask for; ``threads`` default to cores / ``workers``."""
    from engine import Recognizer

    return Recognizer.from_models_dir(
        settings.models_dir,
        threads=settings.threads or default_threads(workers or settings.workers),
        backend=settings.backend,
        engines_dir=settings.engines_dir,
        triton=settings.triton,
        precision=settings.precision,
        int8_cache=settings.int8_cache_dir,
        detector_input=settings.detector_input,
    )


def build_worker(settings: EngineSettings, *, max_queue: int | None = None):
    """An (unstarted) EngineWorker on ``build_recognizer(settings)``."""
    from stream.engine_worker import EngineWorker

    return EngineWorker(build_recognizer(settings), max_queue=max_queue or settings.max_queue,
                        max_batch=settings.max_batch, batch_window_ms=settings.batch_window_ms,
                        workers=settings.workers)


def _cmd_read(args: argparse.Namespace) -> int:
    from engine import ReadOptions, parse_regions, read_image_file
    from stream import wire

    config = ReadOptions.parse(args.config)
    regions = parse_regions(args.regions or ())
    recognizer = build_recognizer(engine_settings(args), workers=1)
    failed = 0
    for path in args.images:
        try:
            image = read_image_file(path)
        except EngineError as exc:
            print(f"platestream: {exc}", file=sys.stderr)
            failed += 1
            continue
        result = recognizer.recognize(image, regions, args.mmc, config)
        result = result.replace(filename=os.path.basename(path))
        print(json.dumps(wire.snapshot_response(result), indent=args.indent))
        sys.stdout.flush()
    return 1 if failed else 0


def _cmd_quantize(args: argparse.Namespace, d) -> int:  # noqa: ANN001 - a Path
    from pathlib import Path

    from engine import quantize

    report = quantize.quantize_models(
        d, calib=Path(args.calib).expanduser() if args.calib else None, force=args.force,
        cache=quantize.int8_cache_dir(engine_settings(args).int8_cache_dir))
    for p in report.removed:
        print(f"removed stale {p}")
    if report.built:
        print(f"int8 models built in {report.seconds:.0f} s from {report.calibration}:")
    for p in report.built:
        print(f"  {p}")
    for p in report.fresh:
        print(f"int8 model up to date: {p}")
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from engine import models

    d = models.resolve_models_dir(engine_settings(args).models_dir)
    if args.action == "export-triton":
        return _export_triton(args, d)
    if args.action == "quantize":
        return _cmd_quantize(args, d)
    if args.action == "fetch":
        problems = models.fetch_models(d, base_url=args.mirror, force=args.force)
        if not problems:
            print(f"models in {d} are complete and verified")
    else:
        problems = [p for s in models.MODELS if s.required and (p := models.check_model(s, d))]
        if not problems:
            print(f"models in {d}: all {sum(s.required for s in models.MODELS)} required "
                  "files present, sha256 verified")
    for line in problems:
        print(f"platestream: {line}", file=sys.stderr)
    return 1 if problems else 0


def _export_triton(args: argparse.Namespace, models_dir) -> int:  # noqa: ANN001 - a Path
    from pathlib import Path

    from engine.backends.triton_repo import export_triton

    if not args.dir:
        print("platestream: models export-triton: give the repository directory to write "
              "(platestream models export-triton DIR)", file=sys.stderr)
        return 2
    engines = args.engines_dir or os.environ.get("PLATESTREAM_ENGINES") or None
    try:
        written = export_triton(Path(args.dir), models_dir,
                                engines_dir=Path(engines) if engines else None,
                                device=args.device, instances=args.instances,
                                max_batch=args.max_batch, force=args.force)
    except (FileExistsError, OSError) as exc:
        print(f"platestream: models export-triton: {exc}", file=sys.stderr)
        return 1
    for m in written:
        batch = f"max batch {m.max_batch_size}" if m.max_batch_size else "no batching"
        print(f"{m.file}: {m.platform}, {batch}, {m.instances} x {m.kind} — {m.note}")
    print(f"Triton model repository written to {args.dir}: tritonserver --model-repository "
          f"{args.dir}; nodes use engine.backend: triton")
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="platestream", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"platestream {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument("--log-file", metavar="FILE", help="also write the full log (debug level, "
                   "e.g. every event's details) to FILE")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    r = sub.add_parser("read", help="read the plates of image files, one Snapshot JSON each")
    r.add_argument("images", nargs="+", metavar="IMAGE")
    r.add_argument("--regions", action="append", metavar="CODE",
                   help="expected region, e.g. us-ca or fr (repeatable)")
    r.add_argument("--mmc", action="store_true", help="vehicle make/model/colour fields")
    r.add_argument("--config", metavar="JSON", help='engine config, e.g. \'{"threshold_d": 0.4}\'')
    r.add_argument("--indent", type=int, default=None, help="pretty-print JSON")
    add_engine_args(r)
    r.set_defaults(func=_cmd_read)

    m = sub.add_parser("models", help="fetch or check the model files, build their int8 "
                       "copies for the CPU, or write a Triton model repository")
    m.add_argument("action", choices=["fetch", "check", "quantize", "export-triton"])
    m.add_argument("dir", nargs="?", metavar="DIR",
                   help="export-triton: the Triton model repository to write")
    m.add_argument("--models-dir", help="models directory (see `read --help`)")
    m.add_argument("--mirror", metavar="URL",
                   help="download each FILE from URL/FILE instead of its upstream address")
    m.add_argument("--force", action="store_true", help="download even files that verify; "
                   "quantize: rebuild even int8 files that are up to date; export-triton: "
                   "replace models already in DIR")
    m.add_argument("--calib", metavar="DIR|VIDEO", help="quantize: calibrate on these images "
                   "(a directory) or frames of this video, ideally from your own cameras "
                   "(default: the evaluation images next to the models)")
    t = m.add_argument_group("export-triton")
    t.add_argument("--engines-dir", help="use the TensorRT engines of `platestream "
                   "build-engines` found here (default: $PLATESTREAM_ENGINES; else ONNX Runtime)")
    t.add_argument("--device", choices=["gpu", "cpu"], default="gpu",
                   help="where Triton runs the model instances (default gpu)")
    t.add_argument("--instances", type=positive_int, default=1,
                   help="model instances per device (default 1)")
    t.add_argument("--max-batch", type=positive_int, default=16,
                   help="largest batch Triton's dynamic batcher forms (default 16)")
    m.set_defaults(func=_cmd_models)

    for name in _SUBCOMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return p


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(verbose: bool, log_file: str | None) -> None:
    """Console at INFO (DEBUG with -v); ``log_file`` gets everything at DEBUG."""
    console = logging.StreamHandler()
    console.setLevel(logging.DEBUG if verbose else logging.INFO)
    handlers: list[logging.Handler] = [console]
    if log_file:
        try:
            Path(log_file).expanduser().parent.mkdir(parents=True, exist_ok=True)
            handlers.append(logging.FileHandler(Path(log_file).expanduser(), encoding="utf-8"))
        except OSError as exc:
            raise EngineError(f"--log-file {log_file}: {exc.strerror or exc}") from None
    logging.basicConfig(level=logging.DEBUG if (verbose or log_file) else logging.INFO,
                        format=LOG_FORMAT, handlers=handlers)
    # norfair advises a vectorized distance for every tracker; ours is scalar on purpose (it
    # compares plate texts) and sees a handful of plates.
    logging.getLogger("norfair.tracker").addFilter(
        lambda record: "scalar distance function" not in str(record.msg))


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        setup_logging(args.verbose, args.log_file)
        install_log_filter()  # no credentials in any log line (console and --log-file)
        return int(args.func(args) or 0)
    except EngineError as exc:
        print(f"platestream: {scrub(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
