"""Turn Ctrl-C and SIGTERM into an orderly stop, so recordings are always finalized."""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import logging
import signal
import threading
from types import FrameType

log = logging.getLogger(__name__)


class StopSignals:
    """While active, SIGINT and SIGTERM set ``requested`` instead of killing the process.

    The loops check ``requested`` between frames and then close their sinks. A
    second Ctrl-C raises KeyboardInterrupt at once (the cleanup still runs in
    the loops' ``finally``); any more are ignored until the cleanup is done, so
    they cannot cut it short. Outside the main thread it does nothing.
    """

    def __init__(self) -> None:
        self.requested: str | None = None
        self._raised = False  # a second Ctrl-C raised KeyboardInterrupt; later ones wait for the cleanup
        self._shielded = False  # inside shield(): finalizing files, which no signal may interrupt
        self._event = threading.Event()
        self._previous: dict[int, Any] = {}  # handlers, as signal.signal returned them

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.requested is not None and signum == signal.SIGINT:
            if self._raised or self._shielded:  # the cleanup is running: more Ctrl-C must not cut it short
                log.info("%s received again: still finalizing", name)
                return
            self._raised = True
            raise KeyboardInterrupt
        self.requested = name
        self._event.set()
        log.info("%s received: stopping", name)

    @contextlib.contextmanager
    def shield(self) -> Iterator[None]:
        """While finalizing outputs (closing, remuxing, renaming), signals only set ``requested``."""
        self._shielded = True
        try:
            yield
        finally:
            self._shielded = False

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
