"""The Recognizer: one image in, one Snapshot-shaped Recognition out."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from engine import models, quantize
from engine.backends import Backend, open_backend
from engine.backends.fitted import DetectorInput, FittedInputs, fitted_graph
from engine.backends.onnxruntime import OrtBackend
from engine.backends.select import CPU_KINDS, Preference, model_file, select_backend
from engine.backends.triton import TritonSettings
from engine.errors import EngineConfigError, ModelLoadError
from engine.formats import read_with_formats
from engine.geometry import coverage, crop
from engine.ocr import OcrRead, PlateOCR, load_ocr_config
from engine.ocr.two_line import TWO_LINE_MAX_ASPECT
from engine.plates import PlateDetector
from engine.plates import process as plate_process
from engine.precision import BF16_FLAGS, INT8_FLAGS, cpu_flags, select_precision
from engine.read_options import ReadOptions
from engine.regions import OCR_REGION_CODES, is_valid_region, normalize_region
from engine.result import (
    UNKNOWN_COLOR,
    UNKNOWN_MAKE_MODEL,
    UNKNOWN_ORIENTATION,
    Box,
    Candidate,
    PlateRead,
    Recognition,
    Region,
    Vehicle,
)
from engine.text_formats import read_with_text_formats
from engine.types import Detections
from engine.vehicles import VEHICLE_TYPES_NOTE, VehicleDetector, vehicle_type
from engine.vehicles import color as vehicle_color
from engine.vehicles import process as vehicle_process

__all__ = ["Recognizer", "parse_regions"]

log = logging.getLogger(__name__)

VEHICLE_THRESHOLD = 0.3
MAX_CANDIDATES = 8
MIN_CANDIDATE_SCORE = 0.01  # alternatives below this are noise, not useful candidates
# The detector's boxes are tight; the OCR reads better with some margin around the plate.
# Measured on the dev set (scripts/eval_accuracy.py): exact match 92.2% unpadded, ~95-96%
# over a broad plateau of 3-8% x / 15-20% y padding.
CROP_PAD_X = 0.05
CROP_PAD_Y = 0.15
# A plate is read from three crops around its box, their probabilities averaged: a read
# from one crop can flip with the pixel or two that int8 or the fitted input move a box (US
# dev exact 89.2-92.6 % over fp32/int8 x square/fitted with one crop, 91.2 % for all four
# with three; README "Int8 on the CPU"). Light (per-frame) calls read the first view only:
# the stream votes over frames instead.
OCR_VIEWS = ((CROP_PAD_X, CROP_PAD_Y), (0.03, 0.12), (0.07, 0.18))
# ... but only a plate whose first view reads less surely than this is read from all three:
# the others keep their one-view read (about 2 of 3 OCR crops saved; engine/ocr/model.py).
OCR_SURE_SCORE = 0.9


def parse_regions(regions: Iterable[str]) -> tuple[str, ...]:
    """Normalise requested region codes; EngineConfigError names the first unknown one."""
    out = []
    for code in regions:
        norm = normalize_region(code)
        if not is_valid_region(norm):
            raise EngineConfigError(
                f"regions: unknown region code {code!r} (expected ISO 3166 like 'fr', 'gb', "
                "or a state like 'us-ca', 'br-sp')"
            )
        out.append(norm)
    return tuple(out)


def _region(read: OcrRead, regions: tuple[str, ...]) -> tuple[Region, bool]:
    """The plate's region code and whether it matches one of the requested regions."""
    country = OCR_REGION_CODES.get(read.region, "")
    for code in regions:
        if code.split("-")[0] == country:
            return Region(code, read.region_score), True
    if not country and regions:
        return Region(regions[0], 0.0), False
    return Region(country, read.region_score if country else 0.0), not regions


def _unplated(vehicles: Detections, results: list[PlateRead], w: int, h: int,
              mmc: bool) -> tuple[Vehicle, ...]:
    """The detected vehicles that no plate result was attached to (detection_mode vehicle)."""
    taken = {r.vehicle.box for r in results if r.vehicle is not None}
    out = []
    for xyxy, score, cls in zip(vehicles.xyxy, vehicles.score, vehicles.class_id, strict=True):
        box = Box.from_xyxy(xyxy, w, h)
        if box not in taken:
            out.append(Vehicle(vehicle_type(cls), float(score), box))
    return tuple(out)


def _attach_vehicle(plate: Box, vehicles: Detections, width: int, height: int) -> Vehicle | None:
    """The most confident vehicle whose box covers (almost) all of the plate."""
    if not len(vehicles):
        return None
    v = vehicles.xyxy
    inside = np.flatnonzero(coverage(plate.xyxy, v) >= 0.8)
    if not len(inside):
        return None
    i = inside[np.argmax(vehicles.score[inside])]
    return Vehicle(
        vehicle_type(vehicles.class_id[i]),
        float(vehicles.score[i]),
        Box.from_xyxy(v[i], width, height),
    )


def _merged(read: PlateRead, candidates: tuple[Candidate, ...]) -> tuple[Candidate, ...]:
    """The full call's candidates with ``read``'s own text first (as the full call has it)."""
    first = Candidate(read.plate, read.score)
    return (first, *(c for c in candidates if c.plate != read.plate))[:MAX_CANDIDATES]


def _with_color(image: np.ndarray, read: PlateRead) -> PlateRead:
    """``read`` with its vehicle's colour (engine/vehicles/color.py): never an empty list."""
    box = read.vehicle.box if read.vehicle is not None else None
    return read.replace(color=vehicle_color.color_scores(image, box, read.box))


class Recognizer:
    """Detects plates, reads them and attaches each to its vehicle.

    Built from injected parts so tests can pass their own; ``from_models_dir`` loads the
    real models. Thread-safe: the backends' ``infer`` may be called concurrently.
    """

    def __init__(
        self, plates: PlateDetector, ocr: PlateOCR, vehicles: VehicleDetector | None = None
    ) -> None:
        self.plates = plates
        self.ocr = ocr
        self.vehicles = vehicles
        self.precision = "fp32"  # from_models_dir says when int8 models were loaded
        # Run the vehicle detector beside the plate detector for one image (from_models_dir
        # turns it on for ONNX Runtime on 2+ cores). A second intra-op thread gains a
        # detector only ~10 % on this 2-core VNNI Xeon, two detectors side by side nearly 2x
        # (scripts/bench_latency_ab.py). The vehicle work is wasted on an image without
        # plates; batches (a busy engine) keep the two in turn.
        self.overlap = False
        # one thread per engine worker at most; a spare thread costs nothing while it waits
        self._beside = ThreadPoolExecutor(4, thread_name_prefix="vehicles")

    @classmethod
    def from_models_dir(
        cls,
        models_dir: str | os.PathLike[str] | None = None,
        *,
        threads: int = 2,
        vehicles: bool = True,
        backend: Preference | None = None,
        engines_dir: str | os.PathLike[str] | None = None,
        triton: TritonSettings | None = None,
        precision: str | None = None,
        int8_cache: str | os.PathLike[str] | None = None,
        detector_input: DetectorInput | None = None,
    ) -> Recognizer:
        """Load the default models from the resolved models directory (see engine.models).

        Args:
            backend: ``auto`` (default), ``onnxruntime``, ``openvino``, ``onnxruntime-cuda``,
                ``tensorrt`` or ``triton``; an explicit one this machine cannot run raises
                BackendError with the reason.
            engines_dir: TensorRT engines built by ``platestream build-engines``.
            triton: the server for backend ``triton`` (default 127.0.0.1:8001); the models
                run there, so only the OCR config is read from the models directory.
            precision: ``auto`` (default), ``fp32``, ``int8`` (the copies from ``platestream
                models quantize`` in ``int8_cache``) or ``bf16`` (OpenVINO); see
                engine.precision for what auto picks. OpenVINO caches its compiled models
                beside ``int8_cache``.
            detector_input: ``fit`` (default): on the CPU the detectors see each frame
                at its own aspect (416 on the long side, engine.backends.fitted); ``square``:
                always 416×416 as exported (TensorRT and Triton always are).
        The engine reads no environment: ``stream.cli.engine_settings`` fills these from
        flags, ``PLATESTREAM_*`` variables and the config (engine.settings).
        """
        d = models.resolve_models_dir(models_dir)
        specs = [models.PLATE_DETECTOR, models.PLATE_OCR]
        specs += [models.VEHICLE_DETECTOR] if vehicles else []
        preference = backend or "auto"
        if preference == "triton":
            return cls._on_triton(d, specs, triton, vehicles)
        onnx = {s.key: models.model_path(s, d) for s in specs}
        engines = engines_dir or None
        choice = select_backend(preference, engines, list(onnx.values()))  # type: ignore[arg-type]
        log.info("engine: backend %s: %s", choice.kind, choice.reason)
        files = dict(onnx)
        if choice.kind == "tensorrt":
            files = {k: model_file(choice, f, engines) for k, f in onnx.items()}
        cache = quantize.int8_cache_dir(int8_cache)
        int8 = {s.key: quantize.int8_path(s, onnx[s.key], cache) for s in specs}
        picked = select_precision(
            precision or "auto",
            backend=choice.kind,
            int8_ready=int8.get(models.PLATE_DETECTOR.key) is not None,
            flags=cpu_flags(INT8_FLAGS + BF16_FLAGS),
        )
        if picked.precision == "int8":
            files.update({k: p for k, p in int8.items() if p is not None})
        log.info("engine: precision %s: %s", picked.precision, picked.reason)

        def cpu_session(path: Path, graph: bytes | None = None) -> Backend:
            if choice.kind == "openvino":
                from engine.backends.openvino import OvBackend

                return OvBackend(path, threads, picked.precision, graph=graph,
                                 cache_dir=cache.parent / "openvino")
            return OrtBackend(path, threads, choice.providers, graph=graph)

        def open_model(spec: models.ModelSpec) -> Backend:
            if choice.kind == "openvino":
                return cpu_session(Path(files[spec.key]))
            return open_backend(files[spec.key], threads, choice.providers)

        fit = choice.kind in CPU_KINDS and (detector_input or "fit") == "fit"

        def fitted_session(spec: models.ModelSpec, canvas: tuple[int, int]) -> Backend:
            path = Path(files[spec.key])
            return cpu_session(path, fitted_graph(path, canvas))

        def fitted(spec: models.ModelSpec, square: Backend, size: int) -> FittedInputs | None:
            if not fit:
                return None
            return FittedInputs(square, size, lambda canvas: fitted_session(spec, canvas),
                                name=spec.key.replace("_", " "))

        def open_plates() -> Backend:
            # the square as rewritten for ONNX Runtime too (fitted.softmax_on_the_last_axis)
            size = plate_process.INPUT_SIZE
            try:
                return fitted_session(models.PLATE_DETECTOR, (size, size))
            except ModelLoadError:  # a graph fitted_graph does not know: as exported
                return open_model(models.PLATE_DETECTOR)

        ocr_cfg = load_ocr_config(models.model_path(models.PLATE_OCR_CONFIG, d))
        ocr = open_model(models.PLATE_OCR)
        veh = None
        if vehicles:
            square = open_model(models.VEHICLE_DETECTOR)
            veh = VehicleDetector(square, fitted(models.VEHICLE_DETECTOR, square,
                                                 vehicle_process.INPUT_SIZE))
        plates = open_plates() if fit else open_model(models.PLATE_DETECTOR)
        log.info("engine: models from %s, %d threads, detector input %s", d, threads,
                 "fitted to each frame's aspect" if fit else "416x416")
        rec = cls(PlateDetector(plates, fitted(models.PLATE_DETECTOR, plates,
                                            plate_process.INPUT_SIZE)),
                  PlateOCR(ocr, ocr_cfg), veh)
        rec.precision = picked.precision
        # a second core to run it on: with `workers: 2` x 1 thread too (scripts/bench_snapshot.py
        # K=1 p50 57.1/49.5 -> 43.5 ms, K=8 35.4/38.1 -> 36.7 req/s)
        rec.overlap = choice.kind in CPU_KINDS and (os.cpu_count() or 1) >= 2
        return rec

    @classmethod
    def _on_triton(cls, d, specs, settings: TritonSettings | None, vehicles: bool) -> Recognizer:
        from engine.backends.triton import TritonBackend, TritonLink

        settings = settings or TritonSettings()
        link = TritonLink(settings)
        log.info("engine: backend triton: models on %s (Triton model names: %s)",
                 settings.url, ", ".join(s.key for s in specs))
        link.wait_ready([s.key for s in specs])
        ocr_cfg = load_ocr_config(models.model_path(models.PLATE_OCR_CONFIG, d))
        ocr = PlateOCR(TritonBackend(link, models.PLATE_OCR.key), ocr_cfg)
        veh = (VehicleDetector(TritonBackend(link, models.VEHICLE_DETECTOR.key))
               if vehicles else None)
        return cls(PlateDetector(TritonBackend(link, models.PLATE_DETECTOR.key)), ocr, veh)

    @property
    def backend_name(self) -> str:
        return self.plates.backend.name

    def backend_status(self) -> dict | None:
        """The inference server's health as this node sees it (remote backends only)."""
        status = getattr(self.plates.backend, "status", None)
        return status() if callable(status) else None

    def capabilities(self) -> dict[str, object]:
        """What the ``mmc`` fields can hold with the installed models (for /info/)."""
        return {
            "vehicle_type": VEHICLE_TYPES_NOTE if self.vehicles is not None else None,
            "color": vehicle_color.NOTE,
            "model_make": None,
            "orientation": None,
            "note": "no make/model or orientation model is installed: with mmc=true "
                    "model_make and orientation hold Plate Recognizer's 'unknown' entry with "
                    "score 0 (generic Unknown / Unknown), never a guess",
        }

    def prepare_scaled(self, h: int, w: int) -> int:
        """Make ahead the plate detector's inputs for parts of an h×w image at its scale
        (``detect_scale``; PlateDetector.prepare_scaled); return how many are ready."""
        return self.plates.prepare_scaled(h, w)

    def recognize(
        self,
        image: np.ndarray,
        regions: Sequence[str] = (),
        mmc: bool = False,
        config: ReadOptions | dict | str | None = None,
    ) -> Recognition:
        """Read the plates of one (h, w, 3) uint8 BGR image."""
        return self.recognize_batch([image], regions, mmc, config)[0]

    def recognize_batch(
        self,
        images: Sequence[np.ndarray],
        regions: Sequence[str] = (),
        mmc: bool = False,
        config: ReadOptions | dict | str | None = None,
        *,
        light: bool = False,
        detect_scale: float | None = None,
    ) -> list[Recognition]:
        """Read several images; the plate reads of all of them share OCR calls.

        ``processing_time`` of each result is the whole batch's time divided evenly.

        ``light``: only what tracking a plate across frames needs: the plate box, text, scores
        and region are exactly those of the full call, but no vehicle is detected (unless
        ``detection_rule`` is strict, which needs it to keep or drop a plate) and
        ``candidates`` holds only the read itself. ``enrich`` adds the rest to the read that
        is reported (a stream's best frame of a vehicle).

        ``detect_scale``: find plates with the images scaled by about this much rather than
        fitted to the detector (PlateDetector.detect): a stream's crop of the part of a frame
        that moved, at the whole frame's scale, on a smaller input. The OCR reads the image
        itself.
        """
        t0 = time.perf_counter()
        cfg = ReadOptions.parse(config)
        wanted = parse_regions(regions)
        vehicle_mode = cfg.detection_mode == "vehicle" and self.vehicles is not None
        need_vehicles = self.vehicles is not None and (
            cfg.detection_rule == "strict" or vehicle_mode
            or (not light and (cfg.mode != "fast" or mmc))
        )
        views = OCR_VIEWS[:1] if light else OCR_VIEWS
        per_image: list[tuple[Detections, Detections]] = []
        crops: list[np.ndarray] = []
        square: list[bool] = []
        for img in images:
            beside = None
            if need_vehicles and self.overlap and len(images) == 1:
                beside = self._vehicles_beside(img, mmc)
            plates = self.plates.detect(img, cfg.threshold_d, detect_scale)
            vehicles = Detections.empty()
            if beside is not None:
                found = beside.result()
                vehicles = found if len(plates) or vehicle_mode else vehicles
            elif need_vehicles and (len(plates) or vehicle_mode):
                vehicles = self.vehicles.detect(  # type: ignore[union-attr]
                    img, VEHICLE_THRESHOLD, recheck_closeups=mmc
                )
            per_image.append((plates, vehicles))
            crops += [crop(img, xyxy, px, py) for xyxy in plates.xyxy for px, py in views]
            square += [
                (x2 - x1) < TWO_LINE_MAX_ASPECT * (y2 - y1) for x1, y1, x2, y2 in plates.xyxy
            ]
        beam = 1 if cfg.mode == "fast" or light else MAX_CANDIDATES
        reads = iter(self.ocr.read_plates(crops, square, beam=beam, views=len(views),
                                          sure=OCR_SURE_SCORE) if crops else [])
        elapsed = (time.perf_counter() - t0) * 1000 / max(1, len(images))
        out = []
        for img, (plates, vehicles) in zip(images, per_image, strict=True):
            h, w = img.shape[:2]
            results = []
            for xyxy, dscore in zip(plates.xyxy, plates.score, strict=True):
                read = next(reads)
                plate = self._plate(read, xyxy, float(dscore), vehicles, w, h, wanted, cfg, mmc)
                if plate is not None:
                    results.append(_with_color(img, plate) if mmc else plate)
            unplated = _unplated(vehicles, results, w, h, mmc) if vehicle_mode else ()
            out.append(Recognition(tuple(results), elapsed, w, h, vehicles=unplated))
        return out

    def _vehicles_beside(self, image: np.ndarray, mmc: bool) -> Future[Detections]:
        return self._beside.submit(self.vehicles.detect,  # type: ignore[union-attr]
                                   image, VEHICLE_THRESHOLD, recheck_closeups=mmc)

    def enrich(
        self,
        image: np.ndarray,
        read: PlateRead,
        regions: Sequence[str] = (),
        mmc: bool = False,
        config: ReadOptions | dict | str | None = None,
    ) -> PlateRead:
        """``read`` (from a ``light`` call on ``image``) with what the full call adds: its
        vehicle and candidates. Text, scores and box stay those of ``read``.

        The full call is run on the image and its plate with the same box supplies the rest
        (the same image and box give the same read); a read whose box is not found again (it
        cannot be, short of a different image) keeps what it has and gets a vehicle by box.
        """
        full = self.recognize(image, regions, mmc, config)
        same = [r for r in full.results if r.box == read.box]
        if same:
            twin = same[0]
            return read.replace(vehicle=twin.vehicle, candidates=_merged(read, twin.candidates),
                                model_make=twin.model_make, color=twin.color,
                                orientation=twin.orientation)
        cfg = ReadOptions.parse(config)
        if self.vehicles is None or (cfg.mode == "fast" and not mmc):
            return read
        h, w = image.shape[:2]
        vehicles = self.vehicles.detect(image, VEHICLE_THRESHOLD, recheck_closeups=mmc)
        read = read.replace(vehicle=_attach_vehicle(read.box, vehicles, w, h))
        return _with_color(image, read) if mmc else read

    def _plate(
        self, read: OcrRead, xyxy: np.ndarray, dscore: float, vehicles: Detections,
        w: int, h: int, wanted: tuple[str, ...], cfg: ReadOptions, mmc: bool,
    ) -> PlateRead | None:
        text, score, candidates = read.text, read.score, read.candidates
        region, matches = _region(read, wanted)
        alphabet, pad = self.ocr.cfg.alphabet, self.ocr.cfg.pad_char
        fit = read_with_formats(read.probs, wanted, alphabet, pad)
        if cfg.text_formats:  # the client's patterns compete with the region formats
            guided = read_with_text_formats(read.probs, cfg.text_formats, alphabet, pad)
            if guided is not None and guided.beats(read.score) and (
                fit is None or guided.score > fit.score
            ):
                text, score = guided.text, guided.score
                candidates = ((text, score), *(c for c in candidates if c[0] != text))
                fit = None
        if fit is not None:
            matches = fit.beats(read.score)
            if matches:
                same_country = region.code.split("-")[0] == fit.region.split("-")[0]
                rscore = region.score if same_country else fit.score / max(read.score, 1e-9)
                region = Region(fit.region, min(1.0, rscore))
                text, score = fit.text, fit.score
                candidates = ((text, score), *(c for c in candidates if c[0] != text))
        if not text or score < cfg.threshold_o:
            return None
        if cfg.region == "strict" and wanted and not matches:
            return None
        box = Box.from_xyxy(xyxy, w, h)
        vehicle = _attach_vehicle(box, vehicles, w, h)
        if cfg.detection_rule == "strict" and vehicle is None:
            return None
        return PlateRead(
            box=box,
            plate=text.lower(),
            score=score,
            dscore=dscore,
            region=region,
            vehicle=vehicle,
            candidates=tuple(
                Candidate(t.lower(), s)
                for i, (t, s) in enumerate(candidates[:MAX_CANDIDATES])
                if i == 0 or s >= MIN_CANDIDATE_SCORE
            ),
            char_scores=read.char_scores,
            # No make/model or orientation model ships: Plate Recognizer's "unknown" entries
            # (score 0), never invented values and never empty lists (clients index [0]).
            # The colour is set by _with_color.
            model_make=UNKNOWN_MAKE_MODEL if mmc else None,
            color=UNKNOWN_COLOR if mmc else None,
            orientation=UNKNOWN_ORIENTATION if mmc else None,
        )
