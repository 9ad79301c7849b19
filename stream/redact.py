"""Credentials never leave the process: ONE scrubber for every error, log line, status field,
metric label, event ``source_url`` and console message.

Camera and webhook URLs carry secrets (``rtsp://user:secret@cam/...``, ``?token=...``), and
libraries quote the URL they failed on (PyAV: ``Connection refused: 'rtsp://...'``). So the
scrubber removes URL userinfo and the values of query parameters named like a secret
wherever they appear in a text, and also every secret literally, for the URLs the config
named (``remember``), in case a library quotes one without its URL around it.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = ["scrub", "scrub_all", "remember", "ScrubFilter", "install_log_filter"]

_SECRET_NAME = re.compile(r"pass|pwd|token|key|secret|auth|sig|credential|session", re.I)
_USERINFO = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s'\"<>]*@")
_QUERY = re.compile(r"([?&;])([^=&#;\s'\"<>]+)=([^&#;\s'\"<>]*)")
MASK = "***"
_known: set[str] = set()
_lock = threading.Lock()


def remember(url: str) -> None:
    """Register the secrets of a configured URL, so they are masked even when quoted alone."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return
    found = []
    if parts.password:
        found += [parts.password, unquote(parts.password)]
    found += [v for k, v in parse_qsl(parts.query, keep_blank_values=True)
              if _SECRET_NAME.search(k)]
    with _lock:
        _known.update(s for s in found if len(s) >= 3)


def scrub(text: str) -> str:
    """``text`` with URL userinfo removed and secret values masked."""
    if not text:
        return text
    text = _USERINFO.sub(r"\1", text)
    text = _QUERY.sub(
        lambda m: f"{m[1]}{m[2]}={MASK}" if _SECRET_NAME.search(m[2]) and m[3] else m[0], text)
    with _lock:
        known = sorted(_known, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def scrub_all(obj: Any) -> Any:
    """``scrub`` applied to every string in a JSON-like structure (status documents)."""
    if isinstance(obj, str):
        return scrub(obj)
    if isinstance(obj, dict):
        return {k: scrub_all(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(scrub_all(v) for v in obj)
    return obj


class ScrubFilter(logging.Filter):
    """Scrubs a log record's final message and traceback text."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            msg = record.getMessage()
        except Exception:  # a broken format string: leave it to logging to report
            return True
        clean = scrub(msg)
        if clean != msg:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
        return True


def install_log_filter(logger: logging.Logger | None = None) -> None:
    """Put a ScrubFilter on every handler of ``logger`` (default: the root logger)."""
    for h in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, ScrubFilter) for f in h.filters):
            h.addFilter(ScrubFilter())
