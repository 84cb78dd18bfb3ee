"""The browser view's server: uvicorn running the app in a background thread."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Callable, Sequence

from .address import Address, bind, check_token
from .app import build_app
from .broadcast import Broadcaster
from .state import ControlChange

log = logging.getLogger(__name__)


class WebServer:
    """uvicorn in a background thread; ``close()`` stops it and joins the thread."""

    def __init__(self, address: Address, hub: Broadcaster | Sequence[Broadcaster],
                 apply_control: Callable[[ControlChange], dict], token: str | None = None) -> None:
        check_token(address, token)
        import uvicorn

        self.address = address
        self.hubs = [hub] if isinstance(hub, Broadcaster) else list(hub)
        self._socket = bind(address)  # bind errors surface here, as clear messages
        config = uvicorn.Config(build_app(self.hubs, apply_control, token), log_level="warning", lifespan="off",
                                timeout_graceful_shutdown=1, access_log=False)
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
