"""The browser view: a Starlette app served by uvicorn in a background thread.

Endpoints: ``/`` (the page), ``/stream.mjpg``, ``/snapshot.jpg``, ``/state``,
``/events`` (Server-Sent Events with the live top-k), ``/control`` (POST JSON),
``/healthz``, ``/static/...`` (the page's own assets; nothing from a CDN).

Binds 127.0.0.1 unless a host is given. Off loopback a token is required, sent
as ``?token=`` or an ``Authorization: Bearer`` header. No endpoint reads a path
from the request, concurrent streams are capped, control input is validated.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
import socket
import threading
from dataclasses import dataclass
from importlib import resources
from typing import Any, Callable

from ..errors import InputError
from .broadcast import Broadcaster

log = logging.getLogger(__name__)

MAX_STREAMS = 16
BOUNDARY = "stream_cam_frame"
STATE_PERIOD_S = 0.2  # the page's top-k updates at most 5 times a second


@dataclass(frozen=True)
class Address:
    host: str
    port: int

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"


def parse_address(text: str) -> Address:
    """``PORT``, ``HOST:PORT`` or ``[IPv6]:PORT``; the host defaults to 127.0.0.1."""
    host, _, port_text = text.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    try:
        port = int(port_text)
    except ValueError:
        raise InputError(f"--serve {text!r}: expected PORT or HOST:PORT, e.g. 8080 or 0.0.0.0:8080") from None
    if not 1 <= port <= 65535:
        raise InputError(f"--serve: port {port} is out of range 1-65535")
    if host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise InputError(f"--serve: {host!r} is not an IP address (use e.g. 127.0.0.1 or 0.0.0.0)") from None
    return Address(host, port)


def check_token(address: Address, token: str | None) -> None:
    if not address.loopback and not token:
        raise InputError(f"--serve {address.host}:{address.port} is reachable from other machines: "
                         "give --token SECRET (viewers add ?token=SECRET), or bind 127.0.0.1")


def _bind(address: Address) -> socket.socket:
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((address.host, address.port))
    except OSError as exc:
        sock.close()
        if exc.errno in (98, 48):  # EADDRINUSE on Linux / macOS
            raise InputError(f"--serve: port {address.port} is already in use; pick another port") from exc
        raise InputError(f"--serve: cannot listen on {address.host}:{address.port}: {exc.strerror}") from exc
    sock.listen(64)
    return sock


def probe_port(address: Address) -> None:
    """Fail early with a clear message if ``address`` cannot be listened on."""
    _bind(address).close()


def _page(token: str | None) -> str:
    html = resources.files(__package__).joinpath("static/index.html").read_text(encoding="utf-8")
    return html.replace("__TOKEN__", json.dumps(token or ""))


def build_app(hub: Broadcaster, apply_control: Callable[[dict[str, Any]], dict[str, Any]],
              token: str | None) -> Any:
    """The Starlette application. ``apply_control`` validates and applies a control dict."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
    from starlette.routing import Route

    streams = {"open": 0}

    class TokenGate:
        """Pure ASGI middleware: every request must carry the token, when there is one."""

        def __init__(self, app: Any) -> None:
            self.app = app

        async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
            if token and scope["type"] == "http" and not _has_token(scope, token):
                await PlainTextResponse("missing or wrong token", status_code=401)(scope, receive, send)
                return
            await self.app(scope, receive, send)

    def stream_slot() -> bool:
        if streams["open"] >= MAX_STREAMS:
            return False
        streams["open"] += 1
        return True

    async def index(request: Request) -> Response:
        return HTMLResponse(_page(token))

    async def healthz(request: Request) -> Response:
        return JSONResponse({"ok": True, "frames": hub.sequence, "viewers": streams["open"]})

    async def state(request: Request) -> Response:
        return JSONResponse(hub.state())

    async def snapshot(request: Request) -> Response:
        _, jpeg = await asyncio.to_thread(hub.jpeg)
        if jpeg is None:
            return PlainTextResponse("no frame yet", status_code=503)
        return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    async def mjpeg(request: Request) -> Response:
        if not stream_slot():
            return PlainTextResponse("too many viewers", status_code=503)

        async def frames() -> Any:
            last = -1
            try:
                while not hub.closed:
                    if hub.sequence == last:
                        await hub.wait_change()
                        continue
                    last, jpeg = await asyncio.to_thread(hub.jpeg)
                    if jpeg is None:
                        continue
                    yield (f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                           f"Content-Length: {len(jpeg)}\r\n\r\n").encode() + jpeg + b"\r\n"
            finally:
                streams["open"] -= 1

        return StreamingResponse(frames(), media_type=f"multipart/x-mixed-replace; boundary={BOUNDARY}",
                                 headers={"Cache-Control": "no-store"})

    async def events(request: Request) -> Response:
        if not stream_slot():
            return PlainTextResponse("too many viewers", status_code=503)

        async def updates() -> Any:
            try:
                while not hub.closed:
                    yield f"data: {json.dumps(hub.state())}\n\n".encode()
                    await asyncio.sleep(STATE_PERIOD_S)
                    await hub.wait_change()
            finally:
                streams["open"] -= 1

        return StreamingResponse(updates(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    async def control(request: Request) -> Response:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return JSONResponse({"error": "expected a JSON object"}, status_code=400)
        if not isinstance(body, dict):
            return JSONResponse({"error": "expected a JSON object"}, status_code=400)
        try:
            return JSONResponse(apply_control(body))
        except InputError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)

    async def script(request: Request) -> Response:
        code = resources.files(__package__).joinpath("static/app.js").read_text(encoding="utf-8")
        return Response(code, media_type="text/javascript")

    routes = [
        Route("/", index), Route("/healthz", healthz), Route("/state", state),
        Route("/snapshot.jpg", snapshot), Route("/stream.mjpg", mjpeg), Route("/events", events),
        Route("/control", control, methods=["POST"]), Route("/static/app.js", script),
    ]
    return Starlette(routes=routes, middleware=[Middleware(TokenGate)])


def _has_token(scope: dict, token: str) -> bool:
    from urllib.parse import parse_qs

    given = parse_qs(scope.get("query_string", b"").decode(errors="replace")).get("token", [""])[0]
    for name, value in scope.get("headers", []):
        if name == b"authorization" and value.lower().startswith(b"bearer "):
            given = value[7:].decode(errors="replace").strip()
    return hmac.compare_digest(given.encode(), token.encode())


class WebServer:
    """uvicorn in a background thread; ``close()`` stops it and joins the thread."""

    def __init__(self, address: Address, hub: Broadcaster, apply_control: Callable[[dict], dict],
                 token: str | None = None) -> None:
        check_token(address, token)
        import uvicorn

        self.address = address
        self.hub = hub
        self._socket = _bind(address)  # bind errors surface here, as clear messages
        config = uvicorn.Config(build_app(hub, apply_control, token), log_level="warning", lifespan="off",
                                timeout_graceful_shutdown=1, access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="stream_cam-web", daemon=True)

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self.hub.attach(asyncio.get_running_loop())
        await self._server.serve(sockets=[self._socket])

    def start(self) -> "WebServer":
        self._thread.start()
        log.info("serving the browser view at %s", self.address.url)
        return self

    def close(self) -> None:
        self.hub.close()
        self._server.should_exit = True
        self._thread.join(5.0)
        if self._thread.is_alive():
            log.warning("the web server did not stop within 5 s")
        self._socket.close()

    def __enter__(self) -> "WebServer":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()
