"""HTTP POST delivery of spool items (JSON, or multipart with a ``json`` field and an image)."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from stream import wire
from stream.delivery.spool import Item
from stream.delivery.worker import DeliveryError

__all__ = ["WebhookSender"]


class WebhookSender:
    """A ``send`` callable for DeliveryWorker. Any 2xx answer is success.

    It keeps its own event loop and HTTP session, so it must be called from one thread
    only (the DeliveryWorker's).

    Args:
        headers: extra request headers (e.g. ``{"Authorization": "Token x"}``).
        timeout: whole-request timeout in seconds.
        multipart: send multipart/form-data (Stream style) instead of a JSON body.
    """

    def __init__(
        self,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        timeout: float = 30.0,
        multipart: bool = False,
    ) -> None:
        self.url = url
        self.headers = dict(headers or {})
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.multipart = multipart
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session: aiohttp.ClientSession | None = None

    def __call__(self, item: Item) -> None:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(self._post(item))

    def _body(self, item: Item) -> aiohttp.FormData | str:
        body = json.dumps(item.payload)
        if not self.multipart:
            return body
        form = aiohttp.FormData()
        form.add_field(wire.MULTIPART_JSON_FIELD, body, content_type="application/json")
        if item.attachment is not None:
            form.add_field(
                wire.MULTIPART_IMAGE_FIELD, item.attachment,
                filename=item.attachment_name or "image.jpg", content_type="image/jpeg",
            )
        return form

    async def _post(self, item: Item) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        headers = dict(self.headers)
        if not self.multipart:
            headers.setdefault("Content-Type", "application/json")
        try:
            async with self._session.post(self.url, data=self._body(item), headers=headers) as r:
                if not 200 <= r.status < 300:
                    text = (await r.text(errors="replace"))[:200]
                    raise DeliveryError(f"{self.url} answered {r.status}: {text}")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise DeliveryError(f"{self.url}: {type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        if self._loop is None:
            return
        if self._session is not None:
            self._loop.run_until_complete(self._session.close())
        self._loop.close()
        self._loop = self._session = None
