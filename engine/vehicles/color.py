"""Vehicle colour from the pixels of its box: colour statistics and a small calibrated classifier.

No colour model ships, so the colour is estimated from the paint itself (``estimate``):

* the body band of the vehicle box (rows 30-90 %, columns 5-95 %: below the windows, above the
  road) is shrunk to 64x48 and converted to CIE Lab and HSV; its robust statistics are the
  features: lightness percentiles, chroma and saturation percentiles, the share of chromatic
  pixels, the chroma-weighted hue direction and an 8-bin hue histogram of the chromatic pixels
  (achromatic vs chromatic and which hue), and the body's lightness against the whole box's;
* when the plate box is known (the recognizer always knows it), the paint next to and above the
  plate is measured too, and the plate's own lightness is the exposure reference (a white car in
  shade and a silver car in the sun are told apart by their lightness relative to the plate);
* a multinomial logistic regression over those features, fitted on hand-labelled development
  vehicles by ``scripts/eval_colors.py --fit`` (parameters in ``color_params.py``), with its
  probabilities temperature-scaled on cross-validated predictions so that scores are calibrated.

It is fast (about a millisecond per vehicle on one core) and never raises on odd input: an empty
or off-frame box gives the unknown form. Whether its answer is served as the ``color`` of a
Snapshot result depends on its measured accuracy (``SHIPPED``, see ``NOTE``); below the bar the
recognizer answers the unknown form ``[{"color": "unknown", "score": 0}]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np

__all__ = [
    "COLORS", "UNKNOWN", "SHIPPED", "NOTE", "estimate", "color_scores", "features", "hue_votes",
    "Model", "Classifier",
]

UNKNOWN = "unknown"

W, H = 64, 48
BAND = (0.30, 0.90, 0.05, 0.95)  # y0, y1, x0, x1 of the body band, as fractions of the box
CHROMA_MIN = 12.0  # Lab chroma above which a pixel counts as coloured
MIN_SIDE = 4  # pixels: a smaller (clipped) box has no measurable colour


def _to_lab_hsv(bgr: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    # Area-averaging a large crop is the costly step: first keep every n-th pixel, down to
    # about twice the target size, then average.
    sy, sx = max(1, bgr.shape[0] // (2 * size[1])), max(1, bgr.shape[1] // (2 * size[0]))
    small = cv2.resize(np.ascontiguousarray(bgr[::sy, ::sx]), size, interpolation=cv2.INTER_AREA)
    small = small.astype(np.float32) / 255
    return cv2.cvtColor(small, cv2.COLOR_BGR2Lab), cv2.cvtColor(small, cv2.COLOR_BGR2HSV)


def _clip(image: np.ndarray, x0: float, y0: float, x1: float, y1: float) -> np.ndarray | None:
    h, w = image.shape[:2]
    xa, xb = int(max(0, np.floor(x0))), int(min(w, np.ceil(x1)))
    ya, yb = int(max(0, np.floor(y0))), int(min(h, np.ceil(y1)))
    if xb - xa < 2 or yb - ya < 2:
        return None
    return image[ya:yb, xa:xb]


def _hue_stats(lab: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    L, a, b = lab.T
    chroma = np.hypot(a, b)
    hue = np.arctan2(b, a)
    w = np.clip(chroma - 8, 0, None)
    ws = w.sum() + 1e-6
    direction = np.array([(w * np.cos(hue)).sum() / ws, (w * np.sin(hue)).sum() / ws])
    bins = np.histogram(np.degrees(hue) % 360, bins=8, range=(0, 360), weights=w)[0] / ws
    return chroma, direction, bins


def box_features(lab: np.ndarray, hsv: np.ndarray) -> np.ndarray:
    """25 colour statistics of the body band of a vehicle crop (Lab and HSV, H x W)."""
    y0, y1, x0, x1 = BAND
    band = (slice(int(y0 * H), int(y1 * H)), slice(int(x0 * W), int(x1 * W)))
    p, q = lab[band].reshape(-1, 3), hsv[band].reshape(-1, 3)
    chroma, direction, bins = _hue_stats(p)
    sat = q[:, 1] * (q[:, 2] > 0.12)  # saturation of near-black pixels is noise
    body_l, box_l = np.median(p[:, 0]) / 100, np.median(lab[..., 0]) / 100
    return np.r_[
        np.percentile(p[:, 0], [10, 25, 50, 75, 90]) / 100,
        np.percentile(chroma, [50, 75, 90]) / 50,
        np.percentile(sat, [50, 75, 90]),
        (chroma > CHROMA_MIN).mean(), (chroma > 20).mean(),
        direction, bins,
        box_l, body_l - box_l,
    ]


def _region_stats(image: np.ndarray, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    """11 statistics of a region (zeros, with a 0 presence flag, when it is off-frame)."""
    region = _clip(image, x0, y0, x1, y1)
    if region is None:
        return np.zeros(11)
    lab, hsv = _to_lab_hsv(region, (32, 16))
    p, q = lab.reshape(-1, 3), hsv.reshape(-1, 3)
    chroma, direction, _ = _hue_stats(p)
    sat = q[:, 1] * (q[:, 2] > 0.12)
    return np.r_[
        np.percentile(p[:, 0], [25, 50, 75]) / 100,
        np.percentile(chroma, [50, 90]) / 50,
        np.percentile(sat, [50, 90]),
        (chroma > CHROMA_MIN).mean(), direction, 1.0,
    ]


def plate_features(
    image: np.ndarray, box: tuple[float, float, float, float],
    plate: tuple[float, float, float, float], body: np.ndarray,
) -> np.ndarray:
    """35 statistics of the paint around the plate, with the plate as exposure reference."""
    bx0, _, bx1, _ = box
    px0, py0, px1, py1 = plate
    pw, ph, bw = px1 - px0, py1 - py0, bx1 - bx0
    cx = (px0 + px1) / 2
    above = _region_stats(image, cx - 1.5 * pw, py0 - 3 * ph, cx + 1.5 * pw, py0 - 0.5 * ph)
    left = _region_stats(image, bx0 + 0.05 * bw, py0 - ph, px0 - 0.3 * pw, py1 + ph)
    right = _region_stats(image, px1 + 0.3 * pw, py0 - ph, bx1 - 0.05 * bw, py1 + ph)
    side = (left + right) / 2
    region = _clip(image, px0, py0, px1, py1)
    if region is None:
        plate_l = np.zeros(2)
    else:
        lab, _ = _to_lab_hsv(region, (32, 8))
        plate_l = np.percentile(lab[..., 0], [50, 90]) / 100
    ref = max(float(plate_l[1]), 0.2)
    return np.r_[above, side, plate_l, body[0:5] / ref, above[0:3] / ref, side[0:3] / ref]


class Model:
    """Standardised features -> multinomial logistic regression -> temperature-scaled softmax."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        self.classes = tuple(params["classes"])
        self.mean = np.asarray(params["mean"], np.float64)
        self.std = np.asarray(params["std"], np.float64)
        self.weights = np.asarray(params["weights"], np.float64)  # (d + 1, k), last row: bias
        self.temperature = float(params.get("temperature", 1.0))

    def logits(self, x: np.ndarray) -> np.ndarray:
        z = (np.atleast_2d(x) - self.mean) / self.std
        return z @ self.weights[:-1] + self.weights[-1]

    def proba(self, x: np.ndarray) -> np.ndarray:
        z = self.logits(x) / self.temperature
        z -= z.max(1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(1, keepdims=True)


def hue_votes(lab: np.ndarray, hsv: np.ndarray) -> np.ndarray:
    """Chroma-weighted votes of the body's coloured pixels for each of ``HUES``.

    Only the central columns of the body band vote (the outer ones hold the tail and head
    lights). Lab hue angle ranges; a dark or weakly coloured orange-to-yellow pixel is brown.
    """
    y0, y1, _, _ = BAND
    sl = (slice(int(y0 * H), int(y1 * H)), slice(int(0.25 * W), int(0.75 * W)))
    p, q = lab[sl].reshape(-1, 3), hsv[sl].reshape(-1, 3)
    chroma = np.hypot(p[:, 1], p[:, 2])
    keep = (chroma > CHROMA_MIN) & (q[:, 1] > 0.25)
    light, chroma = p[keep, 0], chroma[keep]
    hue = np.degrees(np.arctan2(p[keep, 2], p[keep, 1])) % 360
    k = np.searchsorted(HUE_EDGES, hue, side="right")
    k = np.asarray(HUE_OF_RANGE)[k]
    k[(hue >= 40) & (hue < 115) & ((light < 45) | (chroma < 25))] = HUES.index("brown")
    return np.bincount(k, weights=chroma, minlength=len(HUES))


# Lab hue angle ranges (degrees) -> hue name: [345, 45) red, [45, 80) orange, [80, 115) yellow,
# [115, 250) green, [250, 315) blue, [315, 345) purple.
HUES = ("red", "orange", "yellow", "green", "blue", "purple", "brown")
HUE_EDGES = (45.0, 80.0, 115.0, 250.0, 315.0, 345.0)
HUE_OF_RANGE = (0, 1, 2, 3, 4, 5, 0)  # index of searchsorted(HUE_EDGES) -> HUES index
ACHROMATIC = ("black", "silver", "white")
# The colours estimate() answers: Plate Recognizer's names (its golden responses use black,
# white, silver, red, blue); silver also stands for grey.
COLORS = ACHROMATIC + HUES


def hue_proba(votes: np.ndarray, gamma: float) -> np.ndarray:
    """Votes -> probabilities over ``HUES``; ``gamma`` (fitted) sharpens or flattens them."""
    v = np.atleast_2d(votes) + 1.0  # one unit of chroma each: no votes -> uniform
    logp = gamma * np.log(v / v.sum(1, keepdims=True))
    logp -= logp.max(1, keepdims=True)
    e = np.exp(logp)
    return e / e.sum(1, keepdims=True)


class Classifier:
    """P(colour) = P(chromatic) P(hue | chromatic) + P(achromatic) P(black/silver/white | ...).

    ``gate``: chromatic or not, and ``achromatic``: black, silver or white, are logistic
    regressions over the colour statistics; the hue of a chromatic vehicle comes from the
    votes of its coloured pixels (``hue_votes``), which needs no training data per hue.
    """

    classes = ACHROMATIC + HUES

    def __init__(self, params: Mapping[str, Any]) -> None:
        self.gate = Model(params["gate"])
        self.achromatic = Model(params["achromatic"])
        self.gamma = float(params["hue_gamma"])
        self._chromatic = self.gate.classes.index("chromatic")

    def proba(self, x: np.ndarray, votes: np.ndarray) -> np.ndarray:
        pc = self.gate.proba(x)[:, self._chromatic : self._chromatic + 1]
        pa = self.achromatic.proba(x)  # in ACHROMATIC order (fitted so)
        return np.hstack([(1 - pc) * pa, pc * hue_proba(votes, self.gamma)])


def _as_xyxy(box: Any) -> tuple[float, float, float, float] | None:
    """A Box, a {"xmin", ...} mapping or an (x1, y1, x2, y2) sequence; None if unusable."""
    try:
        if isinstance(box, Mapping):
            vals = (box["xmin"], box["ymin"], box["xmax"], box["ymax"])
        elif hasattr(box, "xmin"):
            vals = (box.xmin, box.ymin, box.xmax, box.ymax)
        else:
            vals = tuple(box)[:4]
        out = tuple(float(v) for v in vals)
    except (KeyError, TypeError, ValueError):
        return None
    if len(out) != 4 or not all(np.isfinite(out)):
        return None
    return out  # type: ignore[return-value]


def _as_bgr(image: Any) -> np.ndarray | None:
    img = np.asarray(image)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] < 3 or img.shape[0] < 1 or img.shape[1] < 1:
        return None
    img = img[..., :3]
    if img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    return img


def features(
    image: np.ndarray, box: tuple[float, float, float, float],
    plate: tuple[float, float, float, float] | None,
) -> tuple[np.ndarray, np.ndarray] | None:
    """(colour statistics, hue votes) of the vehicle in ``box``; None without usable pixels."""
    crop = _clip(image, *box)
    if crop is None or min(crop.shape[:2]) < MIN_SIDE:
        return None
    lab, hsv = _to_lab_hsv(crop, (W, H))
    body = box_features(lab, hsv)
    x = body if plate is None else np.r_[body, plate_features(image, box, plate, body)]
    return x, hue_votes(lab, hsv)


_MODELS: dict[str, Classifier] | None = None


def _models() -> dict[str, Classifier]:
    global _MODELS
    if _MODELS is None:
        from engine.vehicles import color_params

        _MODELS = {name: Classifier(p) for name, p in color_params.MODELS.items()}
    return _MODELS


def estimate(
    image_bgr: np.ndarray, vehicle_box: Any, plate_box: Any = None, top: int = 3,
) -> tuple[tuple[str, float], ...]:
    """The vehicle's colour: ``top`` (colour, calibrated probability) pairs, best first.

    ``vehicle_box`` and ``plate_box`` are frame pixels: an ``engine.result.Box``, a mapping
    with ``xmin, ymin, xmax, ymax`` or an ``(x1, y1, x2, y2)`` sequence; boxes are clipped to
    the frame. With the plate box the estimate is better (see ``NOTE``). A box with no usable
    pixels (empty, off-frame, degenerate) gives ``(("unknown", 0.0),)``; nothing raises.
    """
    img = _as_bgr(image_bgr)
    box = _as_xyxy(vehicle_box)
    plate = _as_xyxy(plate_box) if plate_box is not None else None
    if plate is not None and (plate[2] - plate[0] < 1 or plate[3] - plate[1] < 1):
        plate = None
    if img is None or box is None:
        return ((UNKNOWN, 0.0),)
    measured = features(img, box, plate)
    if measured is None or not all(np.all(np.isfinite(v)) for v in measured):
        return ((UNKNOWN, 0.0),)
    x, votes = measured
    model = _models()["plate" if plate is not None else "box"]
    p = model.proba(x, votes)[0]
    order = np.argsort(-p)[: max(1, top)]
    return tuple((model.classes[i], float(p[i])) for i in order)


def _shipped() -> tuple[bool, str]:
    from engine.vehicles import color_params

    return bool(color_params.SHIPPED), str(color_params.NOTE)


SHIPPED, NOTE = _shipped()


def color_scores(image_bgr: np.ndarray, vehicle_box: Any, plate_box: Any = None) -> tuple:
    """What a Snapshot result's ``color`` holds: ``ColorScore``s, best first, never empty.

    The estimate when it ships (``SHIPPED``) and the vehicle box is known, else the unknown
    form ``ColorScore("unknown", 0.0)``.
    """
    from engine.result import ColorScore

    if not SHIPPED or vehicle_box is None:
        return (ColorScore(UNKNOWN, 0.0),)
    return tuple(ColorScore(c, s) for c, s in estimate(image_bgr, vehicle_box, plate_box))
