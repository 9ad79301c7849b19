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
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from engine import __version__
from engine.backends.select import PREFERENCES
from engine.errors import EngineError

__all__ = ["main", "add_engine_args", "build_recognizer"]

# Modules that add subcommands; a module that is not there yet is skipped.
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


def add_engine_args(p: argparse.ArgumentParser) -> None:
    """Arguments every command that loads the engine takes."""
    p.add_argument("--models-dir", help="models directory (default: $PLATESTREAM_MODELS, "
                   "then ~/.cache/platestream/models)")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="ONNX Runtime threads per model run (default: cores / engine workers)")
    p.add_argument("--backend", choices=list(PREFERENCES),
                   default=None, help="inference backend (default: $PLATESTREAM_BACKEND or auto: "
                   "TensorRT when a GPU and fresh engines are present, else CPU; triton: the "
                   "models run on a Triton server, see --triton-url)")
    p.add_argument("--engines-dir", help="TensorRT engines from `platestream build-engines` "
                   "(default: $PLATESTREAM_ENGINES)")
    p.add_argument("--triton-url", metavar="HOST:PORT", help="Triton gRPC endpoint for "
                   "--backend triton (default: $PLATESTREAM_TRITON_URL, then 127.0.0.1:8001)")
    p.add_argument("--precision", choices=["auto", "fp32", "int8"], default=None,
                   help="CPU model precision (default: $PLATESTREAM_PRECISION or auto: the int8 "
                   "models from `platestream models quantize` when the CPU has VNNI or AMX)")


def add_worker_arg(p: argparse.ArgumentParser) -> None:
    """For commands that serve many images at once through an EngineWorker."""
    from stream.engine_worker import DEFAULT_WORKERS

    p.add_argument("--workers", type=positive_int, default=None,
                   help=f"engine threads running images in parallel (default {DEFAULT_WORKERS})")


def default_threads(workers: int = 1) -> int:
    """Intra-op threads per model run so that all engine workers together use every core."""
    return max(1, (os.cpu_count() or 2) // max(1, workers))


def build_recognizer(args: argparse.Namespace):
    """The Recognizer that ``args`` (add_engine_args, optionally ``workers``) ask for."""
    from engine import Recognizer

    return Recognizer.from_models_dir(
        args.models_dir,
        threads=args.threads or default_threads(getattr(args, "workers", None) or 1),
        backend=args.backend,
        engines_dir=args.engines_dir,
        triton=_triton_settings(args),
        precision=getattr(args, "precision", None),
    )


def _triton_settings(args: argparse.Namespace):
    """``args.triton`` (a config's engine.triton) with ``--triton-url`` applied, or None."""
    from engine.backends.triton import TritonSettings

    settings = getattr(args, "triton", None)
    url = getattr(args, "triton_url", None)
    if url:
        return TritonSettings(url=url) if settings is None else replace(settings, url=url)
    return settings


def _cmd_read(args: argparse.Namespace) -> int:
    from engine import EngineConfig, parse_regions, read_image_file

    config = EngineConfig.parse(args.config)
    regions = parse_regions(args.regions or ())
    recognizer = build_recognizer(args)
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
        print(json.dumps(result.to_dict(), indent=args.indent))
        sys.stdout.flush()
    return 1 if failed else 0


def _cmd_quantize(args: argparse.Namespace, d) -> int:  # noqa: ANN001 - a Path
    from pathlib import Path

    from engine import quantize

    report = quantize.quantize_models(
        d, calib=Path(args.calib).expanduser() if args.calib else None, force=args.force)
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

    d = models.resolve_models_dir(args.models_dir)
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
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if not exc.name or not name.startswith(exc.name):
                raise
            continue
        module.register(sub)
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
        return int(args.func(args) or 0)
    except EngineError as exc:
        print(f"platestream: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
