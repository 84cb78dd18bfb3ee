"""What a request must be before the app sees it: addressed to this server, from its own pages, small.

Pure ASGI middleware, in the order a request meets it:

- **Host** (DNS rebinding): a page on ``evil.example`` whose name is re-pointed at 127.0.0.1 sends
  ``Host: evil.example``. Only the names this server is known by are answered: localhost, IP
  literals (an IP in the address bar is its own origin, not a rebinding), and names given with
  ``--allow-host``. Anything else gets 421 and no data.
- **Origin and content type** (cross-site request forgery): a request that changes state (POST)
  must be ``application/json`` (a cross-origin form or ``no-cors`` fetch cannot send that without
  a preflight, which is never answered) and, when the browser names an origin, come from this
  server's own origin; ``Origin: null`` and foreign origins get 403, other types 415.
- **Size**: a body over :data:`MAX_BODY_BYTES` gets 413 before it is read.
- **Headers** on every response: a Content-Security-Policy with ``frame-ancestors 'none'``,
  ``X-Frame-Options: DENY``, ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer``,
  and ``Cache-Control: no-store`` unless the endpoint set its own.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any, Iterable

MAX_BODY_BYTES = 64 * 1024
LOOPBACK_NAMES = ("localhost", "localhost.")
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def _header(scope: dict, wanted: bytes) -> str | None:
    for name, value in scope.get("headers", []):
        if name == wanted:
            return value.decode("latin-1")
    return None


def host_name(host_header: str) -> str:
    """``example.com:8080`` -> ``example.com``; ``[::1]:8080`` -> ``::1``; lower case."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class HostPolicy:
    """The names a request's Host may carry: localhost, any IP literal, and the allowed names."""

    def __init__(self, allowed: Iterable[str] = ()) -> None:
        self.allowed = {name.strip().lower().rstrip(".") for name in allowed if name.strip()}

    def accepts(self, host_header: str | None) -> bool:
        if not host_header:
            return False  # HTTP/1.1 requires it; a browser always sends it
        name = host_name(host_header)
        return name in LOOPBACK_NAMES or _is_ip(name) or name.rstrip(".") in self.allowed


async def _reply(send: Any, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"cache-control", b"no-store"), *SECURITY_HEADERS]})
    await send({"type": "http.response.body", "body": body})


def content_security_policy(style_hashes: Iterable[str] = ()) -> bytes:
    """Everything from this server only; no framing, no plugins, no forms elsewhere."""
    styles = " ".join(f"'sha256-{h}'" for h in style_hashes)
    return ("default-src 'self'; img-src 'self' blob: data:; style-src 'self' " + styles +
            "; script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
            "form-action 'self'; frame-ancestors 'none'").replace("  ", " ").encode()


SECURITY_HEADERS = [
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
]


class RequestGuard:
    """Host, Origin, content type and size checks, and the security headers (see the module's notes)."""

    def __init__(self, app: Any, hosts: HostPolicy, csp: bytes) -> None:
        self.app, self.hosts, self.csp = app, hosts, csp

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = _header(scope, b"host")
        if not self.hosts.accepts(host):
            await _reply(send, 421, "this server does not answer to that host name; "
                                    "start it with --allow-host NAME to use a name")
            return
        if scope["method"] in UNSAFE_METHODS:
            refusal = self._unsafe_refusal(scope, host or "")
            if refusal is not None:
                await _reply(send, *refusal)
                return
        await self.app(scope, self._limited(receive), self._with_headers(send))

    def _unsafe_refusal(self, scope: dict, host: str) -> tuple[int, str] | None:
        origin = _header(scope, b"origin")
        if origin is not None and origin.lower() not in (f"http://{host.lower()}", f"https://{host.lower()}"):
            return 403, "requests from other sites are refused"
        if (_header(scope, b"sec-fetch-site") or "same-origin") not in ("same-origin", "none"):
            return 403, "requests from other sites are refused"
        media_type = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
        if media_type != "application/json":
            return 415, "send the control as application/json"
        length = _header(scope, b"content-length")
        if length is not None and (not length.strip().isdigit() or len(length.strip()) > 15
                                   or int(length) > MAX_BODY_BYTES):
            return 413, f"the request body is over {MAX_BODY_BYTES // 1024} KB"
        return None

    @staticmethod
    def _limited(receive: Any) -> Any:
        """``receive`` that stops a body (chunked, with no length) once it passes the limit."""
        seen = 0

        async def limited() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > MAX_BODY_BYTES:
                    raise BodyTooLarge
            return message

        return limited

    def _with_headers(self, send: Any) -> Any:
        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                headers += [h for h in SECURITY_HEADERS if h[0] not in names]
                headers.append((b"content-security-policy", self.csp))
                if b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        return send_with_headers


class BodyTooLarge(Exception):
    """A request body passed :data:`MAX_BODY_BYTES` while it was read."""
