import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from engine import ImageError, decode_image, read_image_file


def png_header_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge size (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b""))
            + chunk(b"IEND", b""))


def encode(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


@pytest.mark.parametrize(
    "data, match",
    [
        (b"", "empty file"),
        (b"hello, not an image", "not an image"),
        (png_header_claiming(50_000, 50_000), "too large"),
        (png_header_claiming(11_000, 11_000), "too large"),   # under PIL's own bomb limit
        (encode(Image.new("RGB", (4, 4)), "PNG"), "too small"),
    ],
)
def test_bad_bytes_are_rejected_with_a_reason(data, match):
    with pytest.raises(ImageError, match=match):
        decode_image(data, "upload.jpg")


def test_truncated_jpeg_is_rejected(evaldata):
    data = (evaldata / "images/eu/eu1.jpg").read_bytes()
    with pytest.raises(ImageError, match="eu1.jpg: truncated"):
        decode_image(data[: len(data) // 3], "eu1.jpg")


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "P", "CMYK"])
def test_modes_become_bgr(mode):
    img = Image.new("RGB", (32, 16), (255, 0, 0)).convert(mode)
    fmt = "JPEG" if mode in ("L", "CMYK") else "PNG"
    out = decode_image(encode(img, fmt), "x")
    assert out.shape == (16, 32, 3) and out.dtype == np.uint8
    if mode in ("RGB", "RGBA", "P"):
        assert tuple(out[0, 0]) == (0, 0, 255)  # red in BGR


def test_exif_orientation_is_applied():
    img = Image.new("RGB", (40, 20))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif)
    assert decode_image(buf.getvalue(), "x").shape == (40, 20, 3)


def test_read_image_file_names_the_file(tmp_path):
    with pytest.raises(ImageError, match="nope.jpg: cannot read"):
        read_image_file(str(tmp_path / "nope.jpg"))
    with pytest.raises(ImageError, match="cannot read"):
        read_image_file(str(tmp_path))  # a directory
