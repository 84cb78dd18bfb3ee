"""Turn Ctrl-C and SIGTERM into an orderly stop, so recordings are always finalized."""

from __future__ import annotations

from typing import Any

import logging
import signal
import threading
from types import FrameType

log = logging.getLogger(__name__)


class StopSignals:
    """While active, SIGINT and SIGTERM set ``requested`` instead of killing the process.

    The loops check ``requested`` between frames and then close their sinks. A
    second Ctrl-C raises KeyboardInterrupt at once (the cleanup still runs in
    the loops' ``finally``). Outside the main thread it does nothing.
    """

    def __init__(self) -> None:
        self.requested: str | None = None
        self._event = threading.Event()
        self._previous: dict[int, Any] = {}  # handlers, as signal.signal returned them

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.requested is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = name
        self._event.set()
        log.info("%s received: stopping", name)

    def wait(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` seconds, waking early on a stop signal."""
        return self._event.wait(timeout)

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()
