"""Turn untrusted image bytes into a BGR array, or an ImageError that says why not."""

from __future__ import annotations

import io
import warnings

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from engine.errors import ImageError

__all__ = ["MAX_SIDE", "MAX_PIXELS", "decode_image", "read_image_file"]

MAX_SIDE = 12_000
MAX_PIXELS = 60_000_000


def decode_image(data: bytes, name: str = "image") -> np.ndarray:
    """Decode JPEG/PNG/BMP/WebP/... bytes into (h, w, 3) uint8 BGR.

    The header is checked before pixels are decoded, so a tiny file claiming huge
    dimensions is rejected cheaply. EXIF orientation is applied.

    Raises:
        ImageError: empty, not an image, truncated, or larger than MAX_SIDE/MAX_PIXELS.
    """
    if not data:
        raise ImageError(f"{name}: empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            w, h = img.size
            if w > MAX_SIDE or h > MAX_SIDE or w * h > MAX_PIXELS:
                raise ImageError(
                    f"{name}: image too large ({w}x{h}); at most {MAX_SIDE} px a side and "
                    f"{MAX_PIXELS // 1_000_000} Mpx"
                )
            img.load()
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not an image (unknown format)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"{name}: image too large (over {MAX_PIXELS // 1_000_000} Mpx)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{name}: truncated or corrupt image ({exc})") from None
    if w < 8 or h < 8:
        raise ImageError(f"{name}: image too small ({w}x{h}); at least 8x8 px")
    ImageOps.exif_transpose(img, in_place=True)  # a copy only when it must rotate
    if img.mode != "RGB":
        img = img.convert("RGB")
    # Two copies of the pixels at most (Pillow's and ours), never three: the server admits
    # decodes against a pixel budget that assumes so (stream/http/admission.py). numpy's
    # conversion of a whole image goes through one more full-size bytes object, so the rows
    # are copied over in bands of ~4 MB.
    w, h = img.size
    out = np.empty((h, w, 3), np.uint8)
    step = max(1, (4 << 20) // (w * 3))
    for y in range(0, h, step):
        out[y:y + step] = np.asarray(img.crop((0, y, w, min(h, y + step))))
    del img
    return cv2.cvtColor(out, cv2.COLOR_RGB2BGR, dst=out)


def read_image_file(path: str) -> np.ndarray:
    """Read and decode an image file; ImageError names the file on any problem."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_PIXELS)  # a bound: no sane image file is larger than this
    except OSError as exc:
        raise ImageError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return decode_image(data, path)
