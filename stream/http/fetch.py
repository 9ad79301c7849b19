"""``upload_url``: fetch the image to read from a URL the client gives, without letting that
URL reach what only the server can reach (SSRF).

Rules: http and https only; 10 s for the whole fetch; at most the upload limit in bytes; at
most 3 redirects, each one checked again; an ``image/*`` (or octet-stream) answer. Private,
loopback, link-local and other non-global addresses are refused unless
``server.allow_url_hosts`` names the host, the address or a network holding it.

The address check happens inside the resolver the connection uses, so the address that was
checked is the address connected to: a name that resolves to a public address for the check
and to 127.0.0.1 for the connection (DNS rebinding) has no second lookup to exploit. Literal
addresses, which aiohttp connects to without resolving, are checked before each request.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from typing import Any
from urllib.parse import urljoin

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from stream.http.errors import ApiError
from stream.http.parsing import mib

__all__ = ["UrlPolicy", "fetch_image"]

TIMEOUT_S = 10.0
MAX_REDIRECTS = 3
MAX_URL = 2048
_CHUNK = 64 * 1024
_OK_TYPES = ("image/", "application/octet-stream", "binary/octet-stream")

IpNet = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddr = ipaddress.IPv4Address | ipaddress.IPv6Address


class UrlRefused(Exception):
    """The URL's address is not one the server may fetch from."""


class UrlPolicy:
    """Which hosts ``upload_url`` may reach: global addresses, plus ``allow`` (host names,
    addresses or networks such as ``127.0.0.1``, ``localhost``, ``10.0.0.0/8``)."""

    def __init__(self, allow: Iterable[str] = ()) -> None:
        self.names: set[str] = set()
        self.nets: list[IpNet] = []
        for entry in allow:
            try:
                self.nets.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                self.names.add(entry.strip().lower().rstrip("."))

    def allows(self, host: str, addr: IpAddr) -> bool:
        if host.lower().rstrip(".") in self.names:
            return True
        if any(addr in net for net in self.nets):
            return True
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        return addr.is_global and not addr.is_multicast

    def check(self, host: str, address: str) -> None:
        addr = ipaddress.ip_address(address.split("%", 1)[0])
        if not self.allows(host, addr):
            raise UrlRefused(f"upload_url: {host} resolves to {addr}, a private, loopback or "
                             "link-local address (server.allow_url_hosts can allow it)")


class _CheckingResolver(AbstractResolver):
    """getaddrinfo, keeping only the addresses the policy allows (none: refused)."""

    def __init__(self, policy: UrlPolicy) -> None:
        self.policy = policy

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, family=family)
        except OSError as exc:
            raise UrlRefused(f"upload_url: cannot resolve {host} ({exc.strerror or exc})") \
                from None
        out: list[ResolveResult] = []
        refused: UrlRefused | None = None
        for fam, _, proto, _, sockaddr in infos:
            try:
                self.policy.check(host, str(sockaddr[0]))
            except UrlRefused as exc:
                refused = exc
                continue
            out.append(ResolveResult(hostname=host, host=str(sockaddr[0]), port=int(sockaddr[1]),
                                     family=fam, proto=proto, flags=socket.AI_NUMERICHOST))
        if not out:
            raise refused or UrlRefused(f"upload_url: {host} has no usable address")
        return out

    async def close(self) -> None:
        pass


def _check_url(url: URL, policy: UrlPolicy) -> None:
    if url.scheme not in ("http", "https") or not url.host:
        raise ApiError(400, f"upload_url: only http:// and https:// URLs can be fetched, got "
                            f"{str(url)[:80]!r}")
    try:
        ipaddress.ip_address(url.host.split("%", 1)[0])
    except ValueError:
        return  # a name: checked by the resolver, on the addresses it connects to
    try:
        policy.check(url.host, url.host)
    except UrlRefused as exc:
        raise ApiError(400, str(exc)) from None


async def fetch_image(raw_url: Any, policy: UrlPolicy, max_bytes: int,
                      timeout: float = TIMEOUT_S) -> tuple[bytes, str]:
    """The bytes at ``raw_url`` and a file name for them.

    Raises:
        ApiError: 400 for a refused or failing URL (naming why), 413 over ``max_bytes``.
    """
    if not isinstance(raw_url, str) or not raw_url.strip() or len(raw_url) > MAX_URL:
        raise ApiError(400, f"upload_url: expected an http(s) URL of at most {MAX_URL} "
                            "characters")
    try:
        url = URL(raw_url.strip())
    except ValueError:
        raise ApiError(400, "upload_url: not a valid URL") from None
    connector = aiohttp.TCPConnector(resolver=_CheckingResolver(policy), use_dns_cache=False,
                                     limit=1)
    try:
        async with asyncio.timeout(timeout), aiohttp.ClientSession(
            connector=connector, trust_env=False,
            headers={"User-Agent": "platestream upload_url fetcher"},
        ) as session:
            return await _follow(session, url, policy, max_bytes)
    except TimeoutError:
        raise ApiError(400, f"upload_url: no complete answer within {timeout:.0f} s") from None
    except UrlRefused as exc:
        raise ApiError(400, str(exc)) from None
    except aiohttp.ClientError as exc:
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, UrlRefused):  # raised inside the resolver
            raise ApiError(400, str(cause)) from None
        raise ApiError(400, f"upload_url: fetch failed ({type(exc).__name__})") from None


async def _follow(session: aiohttp.ClientSession, url: URL, policy: UrlPolicy,
                  max_bytes: int) -> tuple[bytes, str]:
    for hop in range(MAX_REDIRECTS + 1):
        _check_url(url, policy)
        async with session.get(url, allow_redirects=False) as resp:
            if resp.status in (301, 302, 303, 307, 308):
                location = resp.headers.get("Location")
                if not location or hop == MAX_REDIRECTS:
                    raise ApiError(400, f"upload_url: more than {MAX_REDIRECTS} redirects"
                                   if location else "upload_url: redirect without Location")
                url = URL(urljoin(str(url), location))
                continue
            if resp.status != 200:
                raise ApiError(400, f"upload_url: the server answered HTTP {resp.status}")
            ctype = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if not ctype.startswith(_OK_TYPES):
                raise ApiError(400, f"upload_url: expected an image, got Content-Type "
                                    f"{ctype[:60] or 'none'!r}")
            if resp.content_length is not None and resp.content_length > max_bytes:
                raise _too_big(max_bytes)
            buf = bytearray()
            while chunk := await resp.content.read(_CHUNK):
                buf += chunk
                if len(buf) > max_bytes:
                    raise _too_big(max_bytes)
            name = url.name or "upload"
            return bytes(buf), name
    raise ApiError(400, f"upload_url: more than {MAX_REDIRECTS} redirects")  # unreachable


def _too_big(limit: int) -> ApiError:
    return ApiError(413, f"upload_url: the image is larger than the upload limit of "
                         f"{mib(limit)} MiB (max_upload_mb).")
