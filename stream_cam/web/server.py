"""The browser view's server: uvicorn running the app in a background thread."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any, Callable, Iterable, Sequence

from .address import Address, bind, check_token
from .app import build_app
from .broadcast import Broadcaster
from .state import ControlChange

log = logging.getLogger(__name__)

HEADER_TIMEOUT_S = 10.0  # a client has this long to send a request's headers (slow clients cannot pin connections)
KEEP_ALIVE_S = 5  # an idle kept-alive connection is closed after this
MAX_CONNECTIONS = 64  # beyond this, uvicorn answers 503


def _protocol_with_header_timeout() -> Any:
    """uvicorn's h11 protocol, plus a deadline for each request's headers (uvicorn has none)."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderDeadline(H11Protocol):
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm_header_deadline()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm_header_deadline()

        def _arm_header_deadline(self) -> None:
            previous = getattr(self, "_header_timer", None)
            if previous is not None:  # one deadline per connection: the one for the next request
                previous.cancel()
            self._header_timer = self.loop.call_later(HEADER_TIMEOUT_S, self._header_deadline)

        def connection_lost(self, exc: Exception | None) -> None:
            timer = getattr(self, "_header_timer", None)
            if timer is not None:
                timer.cancel()
            super().connection_lost(exc)

        def _header_deadline(self) -> None:
            # No request in progress: the headers never came (or the connection idles between requests).
            waiting = self.cycle is None or self.cycle.response_complete
            if waiting and not self.transport.is_closing():
                log.debug("closing a connection that sent no complete request in %.0f s", HEADER_TIMEOUT_S)
                self.transport.close()

    return HeaderDeadline


class WebServer:
    """uvicorn in a background thread; ``close()`` stops it and joins the thread."""

    def __init__(self, address: Address, hub: Broadcaster | Sequence[Broadcaster],
                 apply_control: Callable[[ControlChange], dict], token: str | None = None,
                 allow_hosts: Iterable[str] = ()) -> None:
        check_token(address, token)
        import uvicorn

        self.address = address
        self.hubs = [hub] if isinstance(hub, Broadcaster) else list(hub)
        self._socket = bind(address)  # bind errors surface here, as clear messages
        config = uvicorn.Config(build_app(self.hubs, apply_control, token, allow_hosts), log_level="warning",
                                lifespan="off", timeout_graceful_shutdown=1, access_log=False,
                                http=_protocol_with_header_timeout(), timeout_keep_alive=KEEP_ALIVE_S,
                                limit_concurrency=MAX_CONNECTIONS, h11_max_incomplete_event_size=16 * 1024)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="stream_cam-web", daemon=True)

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        for hub in self.hubs:
            hub.attach(asyncio.get_running_loop())
        await self._server.serve(sockets=[self._socket])

    def start(self) -> "WebServer":
        self._thread.start()
        log.info("serving the browser view at %s", self.address.url)
        return self

    def close(self) -> None:
        for hub in self.hubs:
            hub.close()
        self._server.should_exit = True
        self._thread.join(5.0)
        if self._thread.is_alive():
            log.warning("the web server did not stop within 5 s")
        self._socket.close()

    def __enter__(self) -> "WebServer":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()
