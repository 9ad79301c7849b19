"""``platestream build-engines`` and ``python -m trt_builder build``: one argument handler.

Errors end as one line on stderr and exit code 2 (bad arguments, no TensorRT, no GPU),
never as a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from engine.errors import EngineError
from engine.models import resolve_models_dir
from trt_builder.builder import TARGET_KEYS, BuildOptions, build_engines

__all__ = ["register", "add_build_args", "options_from_args", "run_build", "main"]


def _settings(args: argparse.Namespace):  # noqa: ANN202 - engine.settings.EngineSettings
    """``--models-dir`` / ``$PLATESTREAM_MODELS`` and the engines directory the runtime reads
    (``$PLATESTREAM_ENGINES``, else the state directory's engines/): one rule for both."""
    from stream.cli import engine_settings

    return engine_settings(argparse.Namespace(models_dir=getattr(args, "models_dir", None)))


def add_build_args(p: argparse.ArgumentParser) -> None:
    """The build options, shared by both entry points."""
    p.add_argument("--models-dir", help="ONNX models directory (default: $PLATESTREAM_MODELS, "
                   "then ~/.cache/platestream/models)")
    p.add_argument("--out", metavar="DIR", help="where engines are written (default: "
                   "$PLATESTREAM_ENGINES, else the state directory's engines/)")
    p.add_argument("--fp16", action="store_true", help="allow FP16 kernels (2x faster on most "
                   "GPUs, same plate text in our parity test)")
    p.add_argument("--int8", action="store_true",
                   help="INT8 with entropy calibration on --calib-images (implies FP16)")
    p.add_argument("--calib-images", metavar="DIR", help="real camera images (searched "
                   "recursively): INT8 calibration, and proof that a detector's batch rewrite "
                   "gives the same boxes")
    p.add_argument("--calib-max", type=int, default=512, metavar="N",
                   help="use at most N calibration images (default: 512)")
    p.add_argument("--max-batch", type=int, default=8, metavar="N",
                   help="largest batch of the dynamic profiles (default: 8)")
    p.add_argument("--workspace-mb", type=int, default=2048, metavar="MB",
                   help="TensorRT builder workspace (default: 2048)")
    p.add_argument("--only", action="append", choices=TARGET_KEYS, metavar="MODEL",
                   help=f"build only this model (repeatable): {', '.join(TARGET_KEYS)}")
    p.add_argument("--force", action="store_true", help="rebuild even up-to-date engines")
    p.add_argument("--json", action="store_true", help="print the results as JSON")


def options_from_args(args: argparse.Namespace) -> BuildOptions:
    return BuildOptions(
        models_dir=resolve_models_dir(_settings(args).models_dir),
        out_dir=Path(args.out or str(_settings(args).engines_dir)).expanduser(),
        fp16=args.fp16,
        int8=args.int8,
        calib_images=Path(args.calib_images).expanduser() if args.calib_images else None,
        calib_max=args.calib_max,
        max_batch=args.max_batch,
        workspace_mb=args.workspace_mb,
        force=args.force,
        only=tuple(args.only or ()),
    )


def run_build(args: argparse.Namespace) -> int:
    """Build the engines; raises EngineError subclasses (the caller prints one line)."""
    results = build_engines(options_from_args(args))
    if args.json:
        print(json.dumps([{"model": r.model, "engine": str(r.engine), "status": r.status,
                           "detail": r.detail} for r in results], indent=2))
    else:
        for r in results:
            print(r.line())
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``platestream build-engines``."""
    p = subparsers.add_parser(
        "build-engines", help="build TensorRT engines from the ONNX models (NVIDIA GPU)",
        description="Build one TensorRT engine per ONNX model for this GPU and TensorRT "
        "version; up-to-date engines are kept, stale ones rebuilt.",
    )
    add_build_args(p)
    p.set_defaults(func=run_build)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m trt_builder build ...``"""
    parser = argparse.ArgumentParser(prog="python -m trt_builder",
                                     description="ONNX -> TensorRT engine builder")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    b = sub.add_parser("build", help="build the engines (see build --help)")
    add_build_args(b)
    b.set_defaults(func=run_build)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except EngineError as exc:
        print(f"{parser.prog}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
