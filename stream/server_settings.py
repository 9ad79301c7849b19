"""Settings of the Snapshot-compatible HTTP server (the config file's ``server:`` section).

Part of the config layer (``stream.config`` loads and re-exports it), outside ``stream.http``
so that loading a config never imports the server. ``batch_window_ms`` is the engine's
(``engine.settings``); the loader says so when a ``server:`` section still has it."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from stream.bounds import bound_violation
from stream.state import resolve_state_dir

__all__ = ["ServerSettings", "WebhookTarget"]

DEFAULT_MAX_PIXELS = 16_000_000


@dataclass(frozen=True)
class WebhookTarget:
    """One Snapshot webhook: ``image: true`` sends Plate Recognizer's "Webhook With Image"
    (multipart: a ``json`` text field and the ``upload`` image) instead of a JSON body."""

    url: str = field(metadata={"help": "http:// or https:// URL receiving each result"})
    image: bool = field(default=False, metadata={"help": "multipart json + upload body"})

    def __post_init__(self) -> None:
        if not isinstance(self.url, str) or not self.url.startswith(("http://", "https://")):
            raise ValueError(
                f"server.webhooks: expected http:// or https:// URLs, got {self.url!r}")


@dataclass(frozen=True)
class ServerSettings:
    """The HTTP API's settings; every field has a default and declared bounds.

    Bounds live in ``metadata`` (``ge``/``gt``/``le``) so the YAML loader (``stream.config``)
    can report them with the key path; ``__post_init__`` checks them again for direct callers.
    """

    host: str = field(default="0.0.0.0", metadata={"help": "address to listen on"})
    port: int = field(default=8080, metadata={"ge": 0, "le": 65535, "help": "TCP port"})
    token: str | None = field(
        default=None,
        metadata={"help": "require `Authorization: Token TOKEN` on /v1/ endpoints"},
    )
    max_upload_mb: float = field(
        default=5.0, metadata={"gt": 0, "le": 1024, "help": "largest accepted image, MiB"}
    )
    rate_limit: float | None = field(
        default=None, metadata={"gt": 0, "help": "lookups per second per token (none: unlimited)"}
    )
    queue_size: int = field(
        default=64, metadata={"ge": 1, "help": "requests waiting for inference (429 beyond)"}
    )
    webhooks: tuple[str | WebhookTarget, ...] = field(
        default=(), metadata={"help": "URLs (or {url, image}) receiving each result as an "
                              "image.done webhook"}
    )
    data_dir: str | None = field(
        default=None, metadata={"help": "directory of the usage counter and webhook spool "
                                        "(default: the state directory)"}
    )
    enabled: bool = field(default=True, metadata={"help": "start the API with `platestream run`"})
    cors_origins: tuple[str, ...] | None = field(
        default=None, metadata={"help": "origins allowed to read API answers in a browser "
                                "(default: * when no token is set, none otherwise)"}
    )
    allow_url_hosts: tuple[str, ...] = field(
        default=(), metadata={"help": "private/loopback hosts or addresses upload_url may fetch"}
    )
    body_timeout: float = field(
        default=15.0, metadata={"gt": 0, "le": 600, "help": "seconds to receive a request body "
                                "(408 beyond)"}
    )
    metrics_public: bool = field(
        default=False, metadata={"help": "serve /metrics without the token"}
    )
    max_pixels: int = field(
        default=DEFAULT_MAX_PIXELS, metadata={"ge": 64, "le": 60_000_000,
                                              "help": "largest image accepted, in pixels"}
    )

    def __post_init__(self) -> None:
        if isinstance(self.webhooks, (list, str, WebhookTarget)):
            hooks = [self.webhooks] if isinstance(self.webhooks, (str, WebhookTarget)) \
                else self.webhooks
            object.__setattr__(self, "webhooks", tuple(hooks))
        for name in ("cors_origins", "allow_url_hosts"):
            value = getattr(self, name)
            if isinstance(value, (list, str)):
                object.__setattr__(self, name, (value,) if isinstance(value, str) else tuple(value))
        for f in fields(self):
            _check_bounds(f.name, getattr(self, f.name), f.metadata)
        for hook in self.webhooks:
            if not isinstance(hook, WebhookTarget):
                WebhookTarget(hook)  # raises ValueError naming a bad URL
        if self.token is not None and (not self.token or any(c.isspace() for c in self.token)):
            raise ValueError("server.token: must be a non-empty string without spaces")

    @property
    def data_path(self) -> Path:
        """``data_dir``, else the state directory (``stream.state``)."""
        return Path(self.data_dir).expanduser() if self.data_dir else resolve_state_dir()

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def webhook_targets(self) -> tuple[WebhookTarget, ...]:
        return tuple(h if isinstance(h, WebhookTarget) else WebhookTarget(h)
                     for h in self.webhooks)

    @property
    def allowed_origins(self) -> tuple[str, ...]:
        """CORS origins: as configured, else ``*`` only for an open (token-less) server."""
        if self.cors_origins is not None:
            return self.cors_origins
        return ("*",) if self.token is None else ()


def _check_bounds(name: str, value: Any, meta: Any) -> None:
    if value is None or isinstance(value, (bool, str, tuple)):
        return
    problem = bound_violation(value, meta)
    if problem:
        raise ValueError(f"server.{name}: {problem}")
