"""The browser view's Starlette application: the page, MJPEG, snapshots, state, events, controls.

Endpoints: ``/`` (the page), ``/stream.mjpg``, ``/snapshot.jpg``, ``/state``, and per source N
``/stream/N.mjpg``, ``/raw/N.mjpg``, ``/snapshot/N.jpg`` (the plain names are source 0),
``/raw.mjpg`` (the source frames, no overlay: one stream_cam can feed another),
``/events`` (Server-Sent Events with the live top-k), ``/control`` (POST JSON),
``/healthz``, ``/static/...`` (the page's own assets; nothing from a CDN).
When a token is set, every request must carry it: as ``?token=``, an ``Authorization: Bearer``
header, or the cookie the page gets when it is opened with ``?token=`` (see :mod:`.auth`). No endpoint reads a path from the request,
concurrent streams are capped, control input is validated.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import re
from importlib import resources
from typing import Any, Callable, Iterable, Sequence

from .. import jsontext
from ..errors import InputError
from . import auth
from .broadcast import Broadcaster
from .guard import BodyTooLarge, HostPolicy, RequestGuard, content_security_policy
from .state import ControlChange, parse_control

log = logging.getLogger(__name__)

MAX_STREAMS = 16
BOUNDARY = "stream_cam_frame"
STATE_PERIOD_S = 0.2  # the page's top-k updates at most 5 times a second


def _asset(name: str) -> str:
    return resources.files(__package__).joinpath(f"static/{name}").read_text(encoding="utf-8")


def _style_hashes(page: str) -> list[str]:
    """The CSP hashes of the page's inline ``<style>`` blocks (the only inline content it has)."""
    return [base64.b64encode(hashlib.sha256(block.encode()).digest()).decode()
            for block in re.findall(r"<style>(.*?)</style>", page, flags=re.S)]


def combined_state(hubs: Sequence[Broadcaster]) -> dict[str, Any]:
    """Source 0's state at the top level (as with one source), and every source's in ``streams``."""
    states = [hub.state() for hub in hubs]
    return {**states[0], "streams": states}


def build_app(hubs: Sequence[Broadcaster], apply_control: Callable[[ControlChange], dict[str, Any]],
              token: str | None, allow_hosts: Iterable[str] = ()) -> Any:
    """The Starlette application over one :class:`Broadcaster` per source.
    ``apply_control`` applies a parsed control and returns the new state; ``allow_hosts`` are the
    host names (beyond localhost and IP addresses) requests may be addressed to."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import ClientDisconnect, Request
    from starlette.responses import (HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response,
                                     StreamingResponse)
    from starlette.routing import Route

    streams = {"open": 0}
    hub = hubs[0]
    page, code = _asset("index.html"), _asset("app.js")  # read once, not per request
    failures = auth.FailedAttempts()

    def hub_of(request: Request) -> Broadcaster | None:
        number = request.path_params.get("n", 0)
        return hubs[number] if 0 <= number < len(hubs) else None

    class TokenGate:
        """Pure ASGI middleware: every request must carry the token, when there is one."""

        def __init__(self, app: Any) -> None:
            self.app = app

        async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
            if token and scope["type"] == "http":
                client = (scope.get("client") or ("?", 0))[0]
                wait = failures.locked(client)
                if wait > 0:
                    await PlainTextResponse("too many wrong tokens; try again later", status_code=429,
                                            headers={"Retry-After": str(int(wait) + 1)})(scope, receive, send)
                    return
                if not auth.allowed(scope, token):
                    failures.failed(client)
                    await PlainTextResponse("missing or wrong token", status_code=401)(scope, receive, send)
                    return
                failures.succeeded(client)
                if scope.get("path") == "/" and auth.token_in_query(scope):
                    # The page itself, opened with ?token=: keep the token out of the address bar and
                    # give the page a cookie, which its images, events and controls then carry.
                    response = RedirectResponse(auth.without_token(scope), status_code=303,
                                                headers={"Set-Cookie": auth.set_cookie_header(token),
                                                         "Cache-Control": "no-store"})
                    await response(scope, receive, send)
                    return
            await self.app(scope, receive, send)

    def stream_slot() -> bool:
        if streams["open"] >= MAX_STREAMS:
            return False
        streams["open"] += 1
        return True

    async def index(request: Request) -> Response:
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    async def healthz(request: Request) -> Response:
        return JSONResponse({"ok": True, "frames": sum(h.sequence for h in hubs), "sources": len(hubs),
                             "viewers": streams["open"]})

    async def state(request: Request) -> Response:
        return JSONResponse(jsontext.finite(combined_state(hubs)))

    async def snapshot(request: Request) -> Response:
        source = hub_of(request)
        if source is None:
            return PlainTextResponse("no such source", status_code=404)
        _, jpeg = await asyncio.to_thread(source.jpeg)
        if jpeg is None:
            return PlainTextResponse("no frame yet", status_code=503)
        return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    def mjpeg_of(kind: str) -> Callable[[Request], Any]:
        async def mjpeg(request: Request) -> Response:
            source = hub_of(request)
            if source is None:
                return PlainTextResponse("no such source", status_code=404)
            if not stream_slot():
                return PlainTextResponse("too many viewers", status_code=503)

            async def frames() -> Any:
                last = -1
                try:
                    while not source.closed:
                        if source.sequence == last:
                            await source.wait_change()
                            continue
                        last, jpeg = await asyncio.to_thread(source.jpeg, kind)
                        if jpeg is None:
                            continue
                        yield (f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                               f"Content-Length: {len(jpeg)}\r\n\r\n").encode() + jpeg + b"\r\n"
                finally:
                    streams["open"] -= 1

            return StreamingResponse(frames(), media_type=f"multipart/x-mixed-replace; boundary={BOUNDARY}",
                                     headers={"Cache-Control": "no-store"})

        return mjpeg

    async def events(request: Request) -> Response:
        if not stream_slot():
            return PlainTextResponse("too many viewers", status_code=503)

        async def updates() -> Any:
            try:
                while not hub.closed:
                    yield f"data: {jsontext.dumps(combined_state(hubs))}\n\n".encode()
                    await asyncio.sleep(STATE_PERIOD_S)
                    await hub.wait_change()
            finally:
                streams["open"] -= 1

        return StreamingResponse(updates(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    async def control(request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except BodyTooLarge:
            return JSONResponse({"error": "the request body is too large"}, status_code=413)
        except ClientDisconnect:  # the client left mid-body: nobody reads a reply
            return Response(status_code=400)
        except (ValueError, RecursionError):  # not JSON, too deep, or a number too long to parse
            return JSONResponse({"error": "expected a JSON object"}, status_code=400)
        try:
            return JSONResponse(jsontext.finite(apply_control(parse_control(body))))
        except InputError as exc:
            return JSONResponse({"error": str(exc)[:300]}, status_code=400)

    async def script(request: Request) -> Response:
        return Response(code, media_type="text/javascript")

    routes = [
        Route("/", index), Route("/healthz", healthz), Route("/state", state),
        Route("/snapshot.jpg", snapshot), Route("/stream.mjpg", mjpeg_of("annotated")),
        Route("/raw.mjpg", mjpeg_of("raw")), Route("/snapshot/{n:int}.jpg", snapshot),
        Route("/stream/{n:int}.mjpg", mjpeg_of("annotated")), Route("/raw/{n:int}.mjpg", mjpeg_of("raw")), Route("/events", events),
        Route("/control", control, methods=["POST"]), Route("/static/app.js", script),
    ]
    csp = content_security_policy(_style_hashes(page))
    return Starlette(routes=routes, middleware=[Middleware(RequestGuard, hosts=HostPolicy(allow_hosts), csp=csp),
                                                Middleware(TokenGate)])
