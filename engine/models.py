"""Model registry: which files the engine needs, where they come from, how to verify them.

The models directory is resolved from ``--models-dir``, then ``$PLATESTREAM_MODELS``, then
the user cache ``~/.cache/platestream/models``. Weights are never part of the package.
"""

from __future__ import annotations

import hashlib
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from engine.errors import ModelLoadError

__all__ = [
    "ModelSpec",
    "MODELS",
    "PLATE_DETECTOR",
    "PLATE_OCR",
    "PLATE_OCR_CONFIG",
    "VEHICLE_DETECTOR",
    "VEHICLE_CLASSES",
    "resolve_models_dir",
    "model_path",
    "check_model",
    "fetch_models",
    "sha256_file",
]

ENV_VAR = "PLATESTREAM_MODELS"
USER_CACHE = Path("~/.cache/platestream/models")


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One file the engine loads.

    Attributes:
        key: short name used in messages and config.
        filename: file name inside the models directory.
        sha256: pin of the known-good bytes.
        url: upstream download address.
        role: what the file is for.
        required: the engine refuses to start without it.
        upstream_differs: the upstream bytes are not the pinned ones (the pinned file was
            rebuilt locally); a download is then accepted after a structural check.
    """

    key: str
    filename: str
    sha256: str
    url: str
    role: str
    required: bool = True
    upstream_differs: bool = False


_YOLOX = "https://raw.githubusercontent.com/Kazuhito00/YOLOX-ONNX-TFLite-Sample/3d4f1119d0694200671c08069ecb847aa0d8495a"
_OCR = "https://github.com/ankandrew/cnn-ocr-lp/releases/download/arg-plates"

PLATE_DETECTOR = ModelSpec(
    "plate_detector",
    "plate_detector_yolov9t416.onnx",
    "b52632330f6794f30643dcc82e616e1e707eff6ca4202ea837e81ca21404c2d9",
    "https://github.com/ankandrew/open-image-models/releases/download/assets/"
    "yolo-v9-t-416-license-plates-end2end.onnx",
    "licence-plate detector, YOLOv9-t 416 end-to-end (MIT, open-image-models)",
    upstream_differs=True,
)
PLATE_OCR = ModelSpec(
    "plate_ocr",
    "plate_ocr_cct_xs_v2_global.onnx",
    "8031afb5fdc6b4d80462c9d542f1284ebd2cfddf5dbacd62609848d7e2855f44",
    f"{_OCR}/cct_xs_v2_global.onnx",
    "plate OCR with region head, CCT-XS v2 global (MIT, fast-plate-ocr)",
)
PLATE_OCR_CONFIG = ModelSpec(
    "plate_ocr_config",
    "plate_ocr_cct_xs_v2_global.yaml",
    "0335c74a305173bb6f393efed0fde03cadeaa0b649ed8e19f431016d8232d0a6",
    f"{_OCR}/cct_xs_v2_global_plate_config.yaml",
    "OCR config: alphabet, slots, image size, region labels",
)
VEHICLE_DETECTOR = ModelSpec(
    "vehicle_detector",
    "vehicle_yolox_nano416.onnx",
    "695e750a5d5754bb5a8d5325643b59282191a7e7a564e435a415fd3c578eab14",
    f"{_YOLOX}/model/yolox_nano.onnx",
    "vehicle detector, YOLOX-Nano 416 COCO-80 (Apache-2.0, Megvii)",
)
VEHICLE_CLASSES = ModelSpec(
    "vehicle_classes",
    "vehicle_yolox_nano416_coco80.txt",
    "634a1132eb33f8091d60f2c346ababe8b905ae08387037aed883953b7329af84",
    f"{_YOLOX}/coco_classes.txt",
    "COCO-80 class names for the vehicle detector",
)

MODELS: tuple[ModelSpec, ...] = (
    PLATE_DETECTOR,
    PLATE_OCR,
    PLATE_OCR_CONFIG,
    VEHICLE_DETECTOR,
    VEHICLE_CLASSES,
)


def resolve_models_dir(models_dir: str | os.PathLike[str] | None = None) -> Path:
    """The models directory: ``models_dir`` (the CLI fills it from ``--models-dir``, then
    ``$PLATESTREAM_MODELS``: engine.settings), else the user cache."""
    if models_dir:
        return Path(models_dir).expanduser()
    return USER_CACHE.expanduser()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _hint(models_dir: Path) -> str:
    return f"run `platestream models fetch --models-dir {models_dir}` or set ${ENV_VAR}"


def _structure_ok(path: Path) -> bool:
    """Structural check for a plate detector whose upstream bytes differ from our pin."""
    try:
        import onnxruntime as ort

        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        inp, out = sess.get_inputs()[0], sess.get_outputs()[0]
        return list(inp.shape) == [1, 3, 416, 416] and out.shape[-1] == 7
    except Exception:  # any load failure means "not this model"
        return False


def _accepted(spec: ModelSpec, path: Path, digest: str) -> bool:
    """The pinned bytes, or for a model whose upstream file differs, the right structure."""
    return digest == spec.sha256 or (spec.upstream_differs and _structure_ok(path))


def check_model(spec: ModelSpec, models_dir: Path, *, verify_hash: bool = True) -> str | None:
    """Return None when ``spec``'s file is present and good, else one line saying what is wrong."""
    path = models_dir / spec.filename
    if not path.is_file():
        return f"model file {path} is missing ({spec.role}); {_hint(models_dir)}"
    if not verify_hash:
        return None
    digest = sha256_file(path)
    if _accepted(spec, path, digest):
        return None
    return (
        f"model file {path} is corrupt or not the expected model "
        f"(sha256 {digest[:12]}…, expected {spec.sha256[:12]}…); {_hint(models_dir)}"
    )


def model_path(spec: ModelSpec, models_dir: Path, *, verify_hash: bool = False) -> Path:
    """Path of ``spec`` in ``models_dir``; raises ModelLoadError naming the file if unusable."""
    problem = check_model(spec, models_dir, verify_hash=verify_hash)
    if problem:
        raise ModelLoadError(problem)
    return models_dir / spec.filename


ProgressFn = Callable[[ModelSpec, int, int | None], None]


def _text_progress(stream: IO[str]) -> ProgressFn:
    def show(spec: ModelSpec, done: int, total: int | None) -> None:
        if total:
            width = 30
            filled = int(width * done / total)
            bar = "#" * filled + "-" * (width - filled)
            stream.write(f"\r{spec.filename}: [{bar}] {done * 100 // total:3d}% ")
            if done >= total:
                stream.write("\n")
        else:
            stream.write(f"\r{spec.filename}: {done // 1024} KiB ")
        stream.flush()

    return show


def _download(spec: ModelSpec, url: str, dest: Path, progress: ProgressFn, timeout: float) -> str:
    """Download ``url`` to ``dest`` atomically and return the sha256 of the bytes."""
    tmp = dest.with_name(dest.name + ".part")
    h = hashlib.sha256()
    req = urllib.request.Request(url, headers={"User-Agent": "platestream-models-fetch"})
    with urllib.request.urlopen(req, timeout=timeout) as resp, open(tmp, "wb") as out:
        total = resp.headers.get("Content-Length")
        total_n = int(total) if total and total.isdigit() else None
        done = 0
        while chunk := resp.read(1 << 16):
            out.write(chunk)
            h.update(chunk)
            done += len(chunk)
            progress(spec, done, total_n)
    os.replace(tmp, dest)
    return h.hexdigest()


def fetch_models(
    models_dir: Path,
    specs: Iterable[ModelSpec] = MODELS,
    *,
    base_url: str | None = None,
    force: bool = False,
    progress: ProgressFn | None = None,
    timeout: float = 60.0,
) -> list[str]:
    """Download the missing or corrupt files of ``specs`` into ``models_dir``.

    Args:
        base_url: fetch ``{base_url}/{filename}`` instead of each upstream URL (a mirror).
        force: download even files that already verify.

    Returns:
        One line per file that could not be fetched or verified (empty when all is well).
        A download whose sha256 does not match is deleted, never left in place.
    """
    progress = progress or _text_progress(sys.stderr)
    models_dir.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    for spec in specs:
        dest = models_dir / spec.filename
        if not force and check_model(spec, models_dir) is None:
            continue
        url = f"{base_url.rstrip('/')}/{spec.filename}" if base_url else spec.url
        try:
            digest = _download(spec, url, dest, progress, timeout)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            dest.with_name(dest.name + ".part").unlink(missing_ok=True)
            failures.append(f"{spec.filename}: download from {url} failed: {exc}")
            continue
        if not _accepted(spec, dest, digest):
            dest.unlink(missing_ok=True)
            failures.append(
                f"{spec.filename}: sha256 mismatch from {url} (got {digest[:12]}…, "
                f"expected {spec.sha256[:12]}…); the file was deleted"
            )
    return failures
