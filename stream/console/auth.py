"""Console sessions: a login form trades the server token for a signed session cookie.

The cookie never holds the token: it is ``EXPIRES.NONCE.SIGNATURE`` where the signature is an
HMAC-SHA256 under a key derived from the token (so changing the token ends every session, and
sessions survive a restart). The cookie is HttpOnly and SameSite=Strict; writes also need the
``X-CSRF-Token`` header, an HMAC of the session nonce that the pages carry in a meta tag, and an
``Origin`` (when the browser sends one) naming this server.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict

from aiohttp import hdrs, web

__all__ = ["Sessions", "COOKIE", "CSRF_HEADER"]

COOKIE = "platestream_session"
CSRF_HEADER = "X-CSRF-Token"
MAX_AGE_S = 7 * 24 * 3600
_REVOKED_MAX = 1000
_SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class Sessions:
    """Signed, stateless console sessions for one server token."""

    def __init__(self, token: str, *, max_age_s: int = MAX_AGE_S) -> None:
        self._token_digest = hashlib.sha256(token.encode()).digest()
        self._key = hmac.new(token.encode(), b"platestream console session v1",
                             hashlib.sha256).digest()
        self.max_age_s = max_age_s
        self._revoked: OrderedDict[str, None] = OrderedDict()  # logged-out nonces

    def token_ok(self, candidate: str) -> bool:
        # Compare digests: constant time whatever the candidate's length.
        digest = hashlib.sha256(candidate.encode("utf-8", "replace")).digest()
        return hmac.compare_digest(digest, self._token_digest)

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())

    def issue(self, now: float | None = None) -> str:
        expires = int((time.time() if now is None else now) + self.max_age_s)
        payload = f"{expires}.{secrets.token_urlsafe(16)}"
        return f"{payload}.{self._sign(payload)}"

    def nonce(self, cookie: str | None, now: float | None = None) -> str | None:
        """The session's nonce when ``cookie`` is a valid, unexpired, not revoked session."""
        if not cookie or cookie.count(".") != 2:
            return None
        expires, nonce, sig = cookie.split(".")
        if not hmac.compare_digest(sig, self._sign(f"{expires}.{nonce}")):
            return None
        try:
            if int(expires) < (time.time() if now is None else now):
                return None
        except ValueError:
            return None
        return None if nonce in self._revoked else nonce

    def revoke(self, cookie: str | None) -> None:
        nonce = self.nonce(cookie)
        if nonce is not None:
            self._revoked[nonce] = None
            while len(self._revoked) > _REVOKED_MAX:
                self._revoked.popitem(last=False)

    def csrf(self, nonce: str) -> str:
        return self._sign(f"csrf:{nonce}")

    def request_nonce(self, request: web.Request) -> str | None:
        return self.nonce(request.cookies.get(COOKIE))

    def allows(self, request: web.Request) -> bool:
        """A valid session; for writes also the CSRF header and a same-origin request."""
        nonce = self.request_nonce(request)
        if nonce is None:
            return False
        if request.method in _SAFE_METHODS:
            return True
        if not same_origin(request):
            return False
        sent = request.headers.get(CSRF_HEADER, "")
        return hmac.compare_digest(sent.encode("utf-8", "replace"), self.csrf(nonce).encode())

    def set_cookie(self, response: web.StreamResponse, request: web.Request) -> None:
        response.set_cookie(COOKIE, self.issue(), max_age=self.max_age_s, path="/",
                            httponly=True, samesite="Strict", secure=request.secure)


def same_origin(request: web.Request) -> bool:
    """True unless the browser says the request comes from another site."""
    origin = request.headers.get(hdrs.ORIGIN)
    if origin is None:  # same-origin GETs and older browsers; SameSite=Strict still holds
        return True
    host = request.headers.get(hdrs.HOST, "")
    return origin.partition("://")[2] == host
