"""Who may watch: the viewer's credential, and the cookie that carries it for the page's own requests.

A viewer proves they know the token once: ``?token=`` on any URL, or ``Authorization: Bearer``.
Opening the page with ``?token=`` answers with a redirect to the bare page and a cookie; every
asset, stream, event and control the page asks for then carries that cookie. The cookie holds a
value derived from the token (an HMAC), never the token itself, and no response contains the token.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from http.cookies import SimpleCookie
from typing import Callable
from urllib.parse import parse_qs, urlencode

log = logging.getLogger(__name__)

COOKIE = "stream_cam_view"
FREE_FAILURES = 5  # wrong tokens a client may send before it has to wait
MAX_LOCKOUT_S = 60.0


def session_value(token: str) -> str:
    """What the cookie holds: proof of the token that cannot be turned back into it."""
    return hmac.new(token.encode(), b"stream_cam viewer session", hashlib.sha256).hexdigest()


def _query(scope: dict) -> dict[str, list[str]]:
    return parse_qs(scope.get("query_string", b"").decode(errors="replace"), keep_blank_values=True)


def _header(scope: dict, wanted: bytes) -> str:
    for name, value in scope.get("headers", []):
        if name == wanted:
            return value.decode(errors="replace")
    return ""


def given_token(scope: dict) -> str | None:
    """The token as the request states it (query or Bearer header), or None."""
    bearer = _header(scope, b"authorization")
    if bearer.lower().startswith("bearer "):
        return bearer[7:].strip()
    values = _query(scope).get("token")
    return values[0] if values else None


def token_in_query(scope: dict) -> bool:
    return "token" in _query(scope)


def has_session(scope: dict, token: str) -> bool:
    cookie = SimpleCookie()
    try:
        cookie.load(_header(scope, b"cookie"))
    except Exception:  # noqa: BLE001 - http.cookies raises CookieError and others on garbage
        return False
    morsel = cookie.get(COOKIE)
    return morsel is not None and hmac.compare_digest(morsel.value.encode(), session_value(token).encode())


def allowed(scope: dict, token: str) -> bool:
    given = given_token(scope)
    if given is not None:
        return hmac.compare_digest(given.encode(), token.encode())
    return has_session(scope, token)


def set_cookie_header(token: str) -> str:
    return f"{COOKIE}={session_value(token)}; HttpOnly; SameSite=Strict; Path=/"


def without_token(scope: dict) -> str:
    """The request's path and query with ``token`` removed (where to send the browser next)."""
    query = {k: v for k, v in _query(scope).items() if k != "token"}
    rest = urlencode(query, doseq=True)
    return scope.get("path", "/") + (f"?{rest}" if rest else "")


class FailedAttempts:
    """Wrong tokens per client: logged (without the token, at the 1st, 2nd, 4th, 8th... failure) and,
    after :data:`FREE_FAILURES`, answered with 429 for a lockout that doubles up to a minute."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._failures: dict[str, int] = {}
        self._until: dict[str, float] = {}

    def locked(self, client: str) -> float:
        """Seconds this client must still wait (0 if it may try)."""
        return max(0.0, self._until.get(client, 0.0) - self._clock())

    def failed(self, client: str) -> None:
        count = self._failures.get(client, 0) + 1
        self._failures[client] = count
        if count & (count - 1) == 0:  # a power of two: the log says it, but not on every guess
            log.warning("wrong or missing token from %s (%d so far)", client, count)
        if count > FREE_FAILURES:
            self._until[client] = self._clock() + min(MAX_LOCKOUT_S, 2.0 ** (count - FREE_FAILURES - 1))
        if len(self._failures) > 10_000:  # a flood of clients: forget the oldest
            oldest = next(iter(self._failures))
            self._failures.pop(oldest)
            self._until.pop(oldest, None)

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)
        self._until.pop(client, None)
