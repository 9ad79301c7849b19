"""Int8 copies of the models for the CPU, built on the user's machine.

``quantize_models`` runs ONNX Runtime's static quantization (QDQ format, per-channel int8
weights, uint8 activations) on a deterministic calibration set and writes one file per model
into the int8 cache, named after the source model's sha256, the ONNX Runtime version and the
recipe below. A file whose key does not match (another model, another ONNX Runtime, an older
recipe) is never loaded: ``int8_path`` only finds a file with today's key, and
``quantize_models`` deletes the stale ones.

What the recipe keeps in fp32, and why (measured with scripts/eval_accuracy.py and
scripts/bench_latency_ab.py on an AVX-512 VNNI Xeon):
- signed int8 activations ran 2-2.5x slower than fp32 here (the VNNI kernels want u8 x s8),
  so activations are uint8;
- the plate detector's DFL/box maths and its end-to-end NMS stay fp32 (box coordinates need
  the precision, and they are a small part of the time);
- the plate detector's AveragePool layers (YOLOv9's ADown blocks, 2x2 stride 1) become
  depthwise convolutions with weights 1/4 first: ONNX Runtime fuses a quantized AveragePool
  into QLinearAveragePool, which took 2.7 ms of a 24 ms run (fp32's AveragePool: 0.2 ms),
  while the same average as a convolution runs as QLinearConv (weights 1/4 are exact in int8);
  plate detector 1 thread 0.85x of the recipe without it, the same reads;
- YOLOX-Nano found no vehicles at all with every layer int8: its stem sees raw 0..255 pixels
  (activations up to ~140 after the first convolution), so its first convolutions stay fp32.
  The model is opset 11; it is converted to opset 13 first (per-channel QDQ needs it).
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine import models
from engine.errors import EngineError, ModelLoadError

__all__ = [
    "QUANTIZED",
    "RECIPE",
    "int8_cache_dir",
    "int8_path",
    "int8_key",
    "quantize_models",
    "calibration_frames",
    "QuantizeReport",
]

log = logging.getLogger(__name__)

# Bump when what quantize_models does changes: older files are then stale and rebuilt.
RECIPE = 3
USER_CACHE = Path("~/.cache/platestream/models/int8")
# The default calibration set: this many frames spread evenly over the labelled images.
DEFAULT_CALIB_FRAMES = 48
CALIB_IMAGE_EXT = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
CALIB_VIDEO_EXT = (".mp4", ".mkv", ".avi", ".mov", ".ts", ".webm", ".m4v")

# Which models get an int8 copy by default. Only the plate detector gains: measured
# interleaved on 1 thread (this 2-core AVX-512 VNNI/AMX Xeon, loaded), the OCR's int8 copy ran
# 15.4 vs 14.4 ms (batch 4) and YOLOX-Nano's 23.3 vs 19.1 ms (its many small SiLU layers cost
# more as QLinearSigmoid + QLinearMul than fp32's fused kernel), and int8 YOLOX got 6 of the
# 63 hand-labelled vehicle types right where fp32 gets 13 (scripts/eval_accuracy.py). Their
# recipes stay below: pass ``specs`` to build them anyway.
QUANTIZED: tuple[models.ModelSpec, ...] = (models.PLATE_DETECTOR,)


def int8_cache_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """``path`` (the CLI passes ``engine.int8_cache_dir`` / ``$PLATESTREAM_INT8_CACHE``),
    else ``~/.cache/platestream/models/int8``."""
    return Path(path).expanduser() if path else USER_CACHE.expanduser()


def _ort_version() -> str:
    import onnxruntime as ort

    return ort.__version__


def int8_key(source: Path) -> str:
    """The part of the int8 file name that ties it to its source bytes and the runtime."""
    return f"{models.sha256_file(source)[:16]}.ort{_ort_version()}.r{RECIPE}"


def _int8_name(spec: models.ModelSpec, key: str) -> str:
    return f"{Path(spec.filename).stem}.{key}.int8.onnx"


def int8_path(spec: models.ModelSpec, source: Path, cache: Path | None = None) -> Path | None:
    """The fresh int8 copy of ``source`` in the cache, or None when there is none."""
    path = (cache or int8_cache_dir()) / _int8_name(spec, int8_key(source))
    return path if path.is_file() else None


# --- calibration data ----------------------------------------------------------------


def _evaldata_dir(models_dir: Path) -> Path | None:
    for d in (models_dir.parent / "evaldata", Path(__file__).resolve().parents[2] / "shared"
              / "evaldata"):
        if (d / "images").is_dir():
            return d
    return None


def _evenly(items: Sequence, n: int) -> list:
    if len(items) <= n:
        return list(items)
    return [items[int(i * len(items) / n)] for i in range(n)]


def _video_frames(path: Path, n: int) -> Iterator[np.ndarray]:
    """``n`` frames spread over the video (decoded in order; no seeking, so any file works)."""
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            total = stream.frames or 0
            step = max(1, total // n) if total else 25  # unknown length: one a second at 25 fps
            taken = 0
            for i, frame in enumerate(container.decode(stream)):
                if i % step == 0:
                    yield frame.to_ndarray(format="bgr24")
                    taken += 1
                    if taken >= n:
                        return
    except av.error.FFmpegError as exc:
        raise EngineError(f"--calib {path}: cannot decode the video: {exc}") from None


def calibration_frames(
    calib: Path | None, models_dir: Path, n: int = DEFAULT_CALIB_FRAMES
) -> tuple[list[np.ndarray], str]:
    """The calibration frames (BGR) and a line saying where they came from.

    ``calib``: a directory of images (searched recursively, sorted by path) or a video; None
    takes the labelled images of the evaluation data next to the models. Deterministic: the
    same input always gives the same frames.
    """
    from engine.imageio import read_image_file

    if calib is None:
        data = _evaldata_dir(models_dir)
        if data is None:
            raise EngineError("no calibration images: the evaluation data (evaldata/images) is "
                              "not next to the models; pass --calib DIR|VIDEO with frames of "
                              "your own cameras")
        calib = data / "images"
    if not calib.exists():
        raise EngineError(f"--calib {calib}: no such file or directory")
    if calib.is_dir():
        files = sorted(p for p in calib.rglob("*") if p.suffix.lower() in CALIB_IMAGE_EXT)
        if not files:
            raise EngineError(f"--calib {calib}: no images ({', '.join(CALIB_IMAGE_EXT)}) in it")
        frames = []
        for p in _evenly(files, n):
            try:
                frames.append(read_image_file(p))
            except EngineError as exc:
                log.warning("quantize: skipping %s: %s", p, exc)
        what = f"{len(frames)} images from {calib}"
    elif calib.suffix.lower() in CALIB_VIDEO_EXT:
        frames = list(_video_frames(calib, n))
        what = f"{len(frames)} frames of {calib}"
    else:
        raise EngineError(f"--calib {calib}: expected a directory of images or a video "
                          f"({', '.join(CALIB_VIDEO_EXT)})")
    if not frames:
        raise EngineError(f"--calib {calib}: no usable frames")
    return frames, what


class _Reader:
    """onnxruntime.quantization.CalibrationDataReader over a list of feeds."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]) -> None:
        self._it = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)

    def rewind(self) -> None:  # pragma: no cover - not used by MinMax
        pass


# --- per-model recipes ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Recipe:
    op_types: tuple[str, ...]
    exclude: Callable[[object], list[str]]  # onnx ModelProto -> node names kept fp32
    opset: int | None = None  # convert to this opset first
    prepare: Callable[[object], object] | None = None  # ModelProto -> the same maths, rewritten


# The head's last 1x1 convolutions give the DFL box logits (cv2.*.2) and class logits
# (cv3.*.2): in uint8 the box edges moved enough to change the OCR crop (US exact -4 points).
_PLATE_HEAD_OUT = re.compile(r"^/model/model\.22/cv[23]\.\d/cv[23]\.\d\.2/")


def _average_pools_as_convolutions(model):
    """Every AveragePool without padding as the depthwise Conv that computes the same mean."""
    import onnx
    from onnx import helper, numpy_helper

    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {v.name: v.type.tensor_type.shape for v in [*inferred.graph.value_info,
                                                         *inferred.graph.input]}
    nodes = model.graph.node
    for i, node in enumerate(list(nodes)):
        if node.op_type != "AveragePool":
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if any(attrs.get("pads", [0])) or attrs.get("ceil_mode", 0) or attrs.get(
                "auto_pad", b"NOTSET") not in (b"NOTSET", b"VALID"):
            continue  # padded means differ at the border (count_include_pad): leave them
        kernel = list(attrs["kernel_shape"])
        channels = shapes[node.input[0]].dim[1].dim_value
        weight = numpy_helper.from_array(
            np.full((channels, 1, *kernel), 1.0 / np.prod(kernel), np.float32),
            f"{node.name}/mean_weight")
        model.graph.initializer.append(weight)
        conv = helper.make_node("Conv", [node.input[0], weight.name], list(node.output),
                                name=node.name, group=channels, kernel_shape=kernel,
                                strides=list(attrs.get("strides", [1] * len(kernel))))
        nodes.remove(node)
        nodes.insert(i, conv)
    return model


def _plate_exclude(model) -> list[str]:
    # The head's output convolutions, the box branch after them (concat/split, DFL softmax
    # and conv, distance-to-box maths) and the end-to-end NMS: everything in model.22 that is
    # not in the cv2/cv3 convolution stacks, and all of /end2end/.
    out = []
    for node in model.graph.node:
        name = node.name
        if name.startswith("/end2end/") or _PLATE_HEAD_OUT.match(name):
            out.append(name)
        elif name.startswith("/model/model.22/") and not (
            name.startswith("/model/model.22/cv2.") or name.startswith("/model/model.22/cv3.")
        ):
            out.append(name)
    return out


# YOLOX-Nano's stem: the Focus slices feed Conv_41; it and the next convolution see the
# widest activations. Keep the first STEM_CONVS convolutions (and their SiLU) in fp32.
STEM_CONVS = 2


def _yolox_exclude(model) -> list[str]:
    out, convs = [], 0
    for node in model.graph.node:
        if node.op_type == "Conv":
            convs += 1
            if convs > STEM_CONVS:
                break
        if convs:
            out.append(node.name)
    # The decode head's last Concat/Reshape/Transpose give raw tx,ty,tw,th: keep it fp32.
    out += [n.name for n in model.graph.node if n.op_type in ("Reshape", "Transpose")]
    return out


def _ocr_exclude(model) -> list[str]:
    return []


_RECIPES = {
    models.PLATE_DETECTOR.key: _Recipe(
        ("Conv", "Mul", "Sigmoid", "Add", "Concat", "MaxPool", "Resize"), _plate_exclude,
        prepare=_average_pools_as_convolutions,
    ),
    models.VEHICLE_DETECTOR.key: _Recipe(
        ("Conv", "Mul", "Sigmoid", "Add", "Concat", "MaxPool", "Resize"), _yolox_exclude, 13
    ),
    models.PLATE_OCR.key: _Recipe(("Conv", "MatMul"), _ocr_exclude),
}


_ALL = (models.PLATE_DETECTOR, models.VEHICLE_DETECTOR, models.PLATE_OCR)


def _calibration_feeds(
    frames: list[np.ndarray], sources: dict[str, Path], ocr_config: Path
) -> dict[str, list[dict[str, np.ndarray]]]:
    """The inputs each model sees on ``frames``: letterboxed frames for the detectors, and
    the plate crops the fp32 plate detector finds (as the engine crops them) for the OCR."""
    from engine.backends.onnxruntime import OrtBackend
    from engine.geometry import crop
    from engine.ocr import load_ocr_config
    from engine.ocr import process as ocr_process
    from engine.plates import PlateDetector
    from engine.plates import process as plate_process
    from engine.recognizer import CROP_PAD_X, CROP_PAD_Y
    from engine.vehicles import process as vehicle_process

    feeds: dict[str, list[dict[str, np.ndarray]]] = {k: [] for k in sources}
    detector = PlateDetector(OrtBackend(sources[models.PLATE_DETECTOR.key], threads=1))
    inp = detector._input
    ocr_cfg = load_ocr_config(ocr_config)
    crops: list[np.ndarray] = []
    for bgr in frames:
        feeds[models.PLATE_DETECTOR.key].append({inp: plate_process.preprocess(bgr)[0]})
        if models.VEHICLE_DETECTOR.key in feeds:
            feeds[models.VEHICLE_DETECTOR.key].append(
                {"images": vehicle_process.preprocess(bgr)[0]})
        plates = detector.detect(bgr, 0.4)
        crops += [crop(bgr, xyxy, CROP_PAD_X, CROP_PAD_Y) for xyxy in plates.xyxy]
    if models.PLATE_OCR.key in feeds:
        if not crops:
            raise EngineError("quantize: the calibration frames show no plates: the OCR cannot "
                              "be calibrated (pass --calib with frames that show plates)")
        feeds[models.PLATE_OCR.key] = [
            {"input": ocr_process.preprocess([c], ocr_cfg)} for c in crops
        ]
    return feeds


class _QuietHints(logging.Filter):
    """ONNX Runtime's quantizer logs 'Please consider pre-processing' hints on the root
    logger for every model; the optimisation they suggest is done by the session anyway."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing" not in str(record.msg)


def _quantize_one(
    source: Path, dest: Path, recipe: _Recipe, feeds: list[dict[str, np.ndarray]],
    meta: dict[str, str],
) -> None:
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    model = onnx.load(str(source))
    if recipe.opset and model.opset_import[0].version < recipe.opset:
        from onnx import version_converter

        model = version_converter.convert_version(model, recipe.opset)
    if recipe.prepare is not None:
        model = recipe.prepare(model)
    exclude = recipe.exclude(model)
    with tempfile.TemporaryDirectory(prefix="platestream-quant-") as tmp:
        src = Path(tmp) / "source.onnx"
        onnx.save(model, str(src))
        out = Path(tmp) / "int8.onnx"
        hints = _QuietHints()
        logging.getLogger().addFilter(hints)
        try:
            quantize_static(
                str(src), str(out), _Reader(feeds),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QUInt8,  # signed activations ran 2-2.5x slower
                weight_type=QuantType.QInt8,
                op_types_to_quantize=list(recipe.op_types),
                nodes_to_exclude=exclude,
                calibrate_method=CalibrationMethod.MinMax,
                # The mean of the per-frame ranges, not the extreme of all frames: US exact
                # 89.2 -> 91.2 % (fp32 92.6 %); Percentile/Entropy fail on the NMS's
                # variable-length outputs.
                extra_options={"CalibTensorRangeSymmetric": False, "CalibMovingAverage": True},
            )
        finally:
            logging.getLogger().removeFilter(hints)
        q = onnx.load(str(out))
        for k, v in meta.items():
            q.metadata_props.add(key=k, value=v)
        tmp_dest = dest.with_name(dest.name + ".part")
        onnx.save(q, str(tmp_dest))
        os.replace(tmp_dest, dest)


@dataclass(frozen=True, slots=True)
class QuantizeReport:
    built: tuple[Path, ...]   # written now
    fresh: tuple[Path, ...]   # already there with today's key
    removed: tuple[Path, ...]  # stale copies deleted
    calibration: str          # where the frames came from ("" when nothing was built)
    seconds: float


def quantize_models(
    models_dir: Path,
    *,
    calib: Path | None = None,
    cache: Path | None = None,
    force: bool = False,
    frames: int = DEFAULT_CALIB_FRAMES,
    specs: Sequence[models.ModelSpec] = QUANTIZED,
) -> QuantizeReport:
    """Build the int8 copy of each model in ``specs`` that has no fresh one (all with ``force``).

    Raises:
        ModelLoadError: a source model is missing.
        EngineError: no calibration frames, or the ``onnx`` package is not installed.
    """
    t0 = time.perf_counter()
    cache = cache or int8_cache_dir()
    sources = {s.key: models.model_path(s, models_dir) for s in specs}
    todo, fresh = [], []
    for spec in specs:
        existing = int8_path(spec, sources[spec.key], cache)
        if existing and not force:
            fresh.append(existing)
        else:
            todo.append(spec)
    built: list[Path] = []
    what = ""
    if todo:
        try:
            import onnx  # noqa: F401
        except ImportError:
            raise EngineError("quantize needs the onnx package: pip install onnx") from None
        try:
            cache.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EngineError(f"int8 cache {cache}: cannot create it: {exc}") from None
        calib_frames, what = calibration_frames(calib, models_dir, frames)
        feed_sources = {s.key: sources[s.key] for s in todo}
        feed_sources.setdefault(models.PLATE_DETECTOR.key,
                                models.model_path(models.PLATE_DETECTOR, models_dir))
        feeds = _calibration_feeds(
            calib_frames, feed_sources, models.model_path(models.PLATE_OCR_CONFIG, models_dir)
        )
        del calib_frames
        for spec in todo:
            key = int8_key(sources[spec.key])
            dest = cache / _int8_name(spec, key)
            t = time.perf_counter()
            meta = {"platestream.source_sha256": models.sha256_file(sources[spec.key]),
                    "platestream.onnxruntime": _ort_version(),
                    "platestream.recipe": str(RECIPE),
                    "platestream.calibration": what}
            try:
                _quantize_one(sources[spec.key], dest, _RECIPES[spec.key], feeds[spec.key], meta)
            except EngineError:
                raise
            except Exception as exc:  # the quantization tool raises untyped errors
                raise ModelLoadError(f"quantize {spec.filename}: {exc}") from exc
            log.info("quantize: %s -> %s (%.1f s)", spec.filename, dest.name,
                     time.perf_counter() - t)
            built.append(dest)
    removed = _remove_stale(cache, models_dir)
    return QuantizeReport(tuple(built), tuple(fresh), tuple(removed), what,
                          time.perf_counter() - t0)


def _remove_stale(cache: Path, models_dir: Path) -> list[Path]:
    """Delete the int8 files of any model that do not carry today's key (another source
    model, ONNX Runtime or recipe); files with today's key stay, built by default or not."""
    removed: list[Path] = []
    if not cache.is_dir():
        return removed
    for spec in _ALL:
        source = models_dir / spec.filename
        today = _int8_name(spec, int8_key(source)) if source.is_file() else None
        for p in cache.glob(f"{Path(spec.filename).stem}.*.int8.onnx"):
            if p.name != today:
                try:
                    p.unlink()
                    removed.append(p)
                except OSError as exc:
                    log.warning("quantize: cannot remove stale %s: %s", p, exc)
    return removed
