"""Reading a ``POST /v1/plate-reader/`` request: multipart, urlencoded or JSON body, with
bounded reads, into validated parameters. Decoding the image is left to the caller (it runs
off the event loop, see ``decode_upload``)."""

from __future__ import annotations

import base64
import binascii
import io
import json
import re
import secrets
import string
import urllib.parse
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from aiohttp import BodyPartReader, hdrs, web
from PIL import Image, UnidentifiedImageError

from engine import EngineConfigError, ReadOptions, decode_image, parse_regions
from stream.http.errors import ApiError

__all__ = [
    "Limits",
    "RawForm",
    "SnapshotParams",
    "read_form",
    "parse_params",
    "decode_upload",
    "upload_bytes",
    "image_size",
    "too_large",
    "make_filename",
    "parse_bool",
    "parse_timestamp",
]

MAX_FIELD_BYTES = 64 * 1024  # any form field other than upload
MAX_PARTS = 64
MAX_REGIONS = 32
MAX_CAMERA_ID = 256
_CHUNK = 64 * 1024
_DATA_URL = re.compile(r"^data:[^,]{0,200};base64,", re.IGNORECASE)
_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"BM", b"RIFF", b"II*\x00", b"MM\x00*")
_EXT_BY_MAGIC = {b"\xff\xd8\xff": ".jpg", b"\x89PNG": ".png", b"GIF8": ".gif", b"BM": ".bmp",
                 b"RIFF": ".webp"}


@dataclass(frozen=True, slots=True)
class Limits:
    """Upload bounds. ``body`` leaves room for base64 (4/3 of the image) and the form."""

    upload: int

    @property
    def body(self) -> int:
        return self.upload * 4 // 3 + MAX_PARTS * MAX_FIELD_BYTES


@dataclass(slots=True)
class RawForm:
    """Fields as sent: text values by name, and the upload as bytes (file) or base64 text."""

    fields: dict[str, list[Any]] = field(default_factory=dict)
    upload: bytes | str | None = None
    upload_name: str | None = None

    def add(self, name: str, value: Any) -> None:
        self.fields.setdefault(name, []).append(value)

    def last(self, name: str) -> Any:
        values = self.fields.get(name)
        return values[-1] if values else None


@dataclass(frozen=True, slots=True)
class SnapshotParams:
    regions: tuple[str, ...]
    camera_id: str | None
    timestamp: str
    mmc: bool
    config: ReadOptions
    ignored_config: tuple[str, ...] = ()  # config keys this server does not know


def mib(n: int) -> str:
    """Bytes as the MiB figure an operator configured (5, 0.05, 10.5)."""
    return f"{round(n / 1048576, 3):g}"


def too_large(limits: Limits) -> ApiError:
    """413 naming the configured upload limit (the body may be up to 4/3 of it plus the
    form, for base64; the client only needs to know the image limit)."""
    return ApiError(413, f"Request body too large; the upload limit is "
                         f"{mib(limits.upload)} MiB (max_upload_mb).")


Charge = Callable[[int], None]


def _no_charge(n: int) -> None:
    pass


async def read_form(request: web.Request, limits: Limits, charge: Charge = _no_charge) -> RawForm:
    """Read the body, never more than ``limits.body`` bytes, into a RawForm; ``charge`` is
    called with the size of every chunk kept (a global memory budget may refuse it).

    Raises:
        ApiError: 413 over the limits, 415 for an unknown content type, 400 for a malformed body.
    """
    if request.content_length is not None and request.content_length > limits.body:
        raise too_large(limits)
    ctype = request.headers.get(hdrs.CONTENT_TYPE, "")
    mime = request.content_type
    if mime == "multipart/form-data":
        return await _read_multipart(request, limits, charge)
    body = await _read_body(request, limits, charge)
    if mime == "application/json":
        return _json_form(body)
    if mime == "application/x-www-form-urlencoded":
        return _urlencoded_form(body)
    if not ctype and not body:
        return RawForm()
    raise ApiError(
        415, f'Unsupported media type "{ctype or "none"}" in request; send multipart/form-data, '
        "application/x-www-form-urlencoded or application/json.",
    )


async def _read_body(request: web.Request, limits: Limits, charge: Charge) -> bytes:
    buf = bytearray()
    try:
        while chunk := await request.content.read(_CHUNK):
            charge(len(chunk))
            buf += chunk
            if len(buf) > limits.body:
                raise too_large(limits)
    except ApiError:
        raise
    except Exception as exc:  # noqa: BLE001 - a broken body (bad chunking, lost connection)
        raise ApiError(400, f"request body: incomplete ({type(exc).__name__})") from None
    return bytes(buf)


def _json_form(body: bytes) -> RawForm:
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, f"JSON body: not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise ApiError(400, f"JSON body: expected an object, got {type(doc).__name__}")
    form = RawForm()
    for name, value in doc.items():
        if name == "upload":
            if not isinstance(value, str):
                raise ApiError(400, "upload: expected a base64 string in a JSON body")
            form.upload = value
        elif name == "regions" and isinstance(value, list):
            for v in value:
                form.add(name, v)
        else:
            form.add(name, value)
    return form


def _urlencoded_form(body: bytes) -> RawForm:
    try:
        text = body.decode("ascii")
        pairs = urllib.parse.parse_qsl(text, keep_blank_values=True, strict_parsing=False,
                                       max_num_fields=MAX_PARTS)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ApiError(400, f"form body: malformed ({exc})") from None
    form = RawForm()
    for name, value in pairs:
        if name == "upload":
            form.upload = value
        else:
            form.add(name, value)
    return form


async def _read_multipart(request: web.Request, limits: Limits, charge: Charge) -> RawForm:
    form = RawForm()
    budget = limits.body
    try:
        reader = await request.multipart()
        for _ in range(MAX_PARTS + 1):
            part = await reader.next()
            if part is None:
                return form
            if not isinstance(part, BodyPartReader):
                raise ApiError(400, "multipart body: nested multipart parts are not supported")
            budget = await _read_part(part, form, limits, budget, charge)
        raise ApiError(400, f"multipart body: more than {MAX_PARTS} parts")
    except ApiError:
        raise
    except Exception as exc:  # noqa: BLE001 - any parser failure here is the client's
        # aiohttp's multipart parser raises ValueError, AssertionError, RuntimeError,
        # payload errors... for a bad boundary, a truncated body and the like.
        raise ApiError(400, f"multipart body: malformed ({exc or type(exc).__name__})") from None


async def _read_part(
    part: BodyPartReader, form: RawForm, limits: Limits, budget: int, charge: Charge
) -> int:
    name = part.name or ""
    is_file = part.filename is not None
    if name == "upload":
        cap = limits.upload if is_file else limits.upload * 4 // 3 + 1024
    else:
        cap = MAX_FIELD_BYTES
    buf = bytearray()
    while chunk := await part.read_chunk(_CHUNK):
        charge(len(chunk))
        buf += chunk
        budget -= len(chunk)
        if budget < 0:
            raise too_large(limits)
        if len(buf) > cap:
            if name == "upload":
                raise too_large(limits)
            raise ApiError(400, f"{name}: field too long (over {cap} bytes)")
    if name == "upload":
        if is_file or bytes(buf[:4]).startswith(_IMAGE_MAGIC):
            form.upload, form.upload_name = bytes(buf), part.filename
        else:
            form.upload = _text(name, buf, part)
    elif name:
        form.add(name, _text(name, buf, part))
    return budget


def _text(name: str, data: bytes | bytearray, part: BodyPartReader) -> str:
    try:
        return bytes(data).decode(part.get_charset(default="utf-8"))
    except (UnicodeDecodeError, LookupError):
        raise ApiError(400, f"{name}: not valid UTF-8 text") from None


def parse_bool(name: str, value: Any, default: bool = False) -> bool:
    """``true``/``True``/``1``/``yes`` and their opposites, as clients send them."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        low = value.strip().lower()
        if low in ("true", "1", "yes", "on"):
            return True
        if low in ("false", "0", "no", "off"):
            return False
    raise ApiError(400, f"{name}: expected true or false, got {value!r:.50}")


def parse_timestamp(value: Any, now: datetime | None = None) -> str:
    """ISO 8601 (``Z``, offset or naive = UTC) -> ``2020-10-12T16:17:27.574008Z``."""
    if value is None or value == "":
        ts = now or datetime.now(UTC)
    else:
        if not isinstance(value, str) or len(value) > 64:
            raise ApiError(400, f"timestamp: expected an ISO 8601 string, got {value!r:.50}")
        try:
            ts = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ApiError(
                400, f"timestamp: not an ISO 8601 date-time (e.g. 2024-01-31T12:00:00Z), "
                f"got {value!r:.50}",
            ) from None
        ts = ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _regions(values: list[Any]) -> tuple[str, ...]:
    codes: list[str] = []
    for v in values:
        if not isinstance(v, str):
            raise ApiError(400, f"regions: expected region codes as strings, got {v!r:.50}")
        codes += [c for c in v.split(",") if c.strip()]
    if len(codes) > MAX_REGIONS:
        raise ApiError(400, f"regions: at most {MAX_REGIONS} codes, got {len(codes)}")
    return parse_regions(codes)


def parse_params(form: RawForm) -> SnapshotParams:
    """Validate the non-image fields; ApiError 400 names the field."""
    camera_id = form.last("camera_id")
    if camera_id is not None and not isinstance(camera_id, str):
        if isinstance(camera_id, bool) or not isinstance(camera_id, (int, float)):
            raise ApiError(400, f"camera_id: expected a string, got {camera_id!r:.50}")
        camera_id = str(camera_id)
    if camera_id is not None and len(camera_id) > MAX_CAMERA_ID:
        raise ApiError(400, f"camera_id: at most {MAX_CAMERA_ID} characters")
    config = form.last("config")
    try:
        # The docs' own "strict region" example sends the singular `region`.
        regions = _regions(form.fields.get("regions") or form.fields.get("region") or [])
        read_options, ignored = ReadOptions.split(config if config != "" else None)
    except EngineConfigError as exc:
        raise ApiError(400, str(exc)) from None
    return SnapshotParams(
        regions=regions,
        camera_id=camera_id or None,
        timestamp=parse_timestamp(form.last("timestamp")),
        mmc=parse_bool("mmc", form.last("mmc")),
        config=read_options,
        ignored_config=ignored,
    )


def _b64decode(text: str, limit: int) -> bytes:
    text = _DATA_URL.sub("", text.strip(), count=1)
    # Unencoded '+' in a urlencoded body arrives as ' '; newlines come from MIME wrapping.
    text = re.sub(r"[\r\n\t]", "", text).replace(" ", "+")
    if len(text) * 3 // 4 > limit:
        raise ApiError(413, f"Request body too large; the upload limit is "
                            f"{mib(limit)} MiB (max_upload_mb).")
    if "-" in text or "_" in text:
        text = text.replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, "upload: not valid base64") from None


def upload_bytes(form: RawForm, limits: Limits) -> tuple[bytes, str]:
    """The uploaded image file (base64 decoded) and its file name. Raises ApiError 400
    (missing, bad base64) or 413. ``upload_url`` is the caller's (it needs the network)."""
    if form.upload is None:
        raise ApiError(400, "upload: missing; send the image as a file part named 'upload', "
                            "as a base64 string in the 'upload' field, or its URL in "
                            "'upload_url'")
    data = form.upload if isinstance(form.upload, bytes) else _b64decode(form.upload,
                                                                          limits.upload)
    if len(data) > limits.upload:
        raise too_large(limits)
    return data, file_name(form.upload_name, data)


def file_name(given: str | None, data: bytes) -> str:
    return _clean_name(given) or "upload" + _EXT_BY_MAGIC.get(
        next((m for m in _EXT_BY_MAGIC if data.startswith(m)), b""), ""
    )


def image_size(data: bytes, max_pixels: int) -> tuple[int, int]:
    """(width, height) from the image header, without decoding pixels; ApiError 400 when
    it is not an image, 413 for one so large that Pillow refuses to even open it."""
    if not data:
        raise ApiError(400, "upload: empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                return img.size
    except UnidentifiedImageError:
        raise ApiError(400, "upload: not an image (unknown format)") from None
    except Image.DecompressionBombError:
        raise ApiError(413, f"Image too large: over {2 * (Image.MAX_IMAGE_PIXELS or 0) / 1e6:.0f} "
                            f"Mpx; the limit is {max_pixels / 1e6:.1f} Mpx (--max-pixels).") \
            from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ApiError(400, f"upload: truncated or corrupt image ({exc})") from None


def decode_upload(data: bytes) -> np.ndarray:
    """The image as (h, w, 3) uint8 BGR. Blocking: run it in a thread. ApiError 400 when it
    cannot be decoded."""
    try:
        return decode_image(data, "upload")
    except ValueError as exc:  # ImageError: empty, not an image, truncated, too large
        raise ApiError(400, str(exc)) from None


def _clean_name(name: str | None) -> str:
    if not name:
        return ""
    base = re.split(r"[\\/]", name)[-1]
    base = "".join(c for c in base if c.isprintable() and c not in "\"'<>")
    return base.strip()[-128:]


_ALPHABET = string.ascii_letters + string.digits


def make_filename(name: str, now: datetime | None = None) -> str:
    """``HHMM_<5 random chars>_<name>``, as the Snapshot API names stored uploads."""
    now = now or datetime.now(UTC)
    tag = "".join(secrets.choice(_ALPHABET) for _ in range(5))
    return f"{now:%H%M}_{tag}_{name}"
