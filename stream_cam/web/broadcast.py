"""The hand-off between the pipeline (any thread) and web viewers (the server's event loop).

``publish()`` is all the pipeline ever does: it stores a reference to the newest
annotated frame and its state and wakes the viewers, O(1), never blocking and
never encoding. Each viewer then takes the NEWEST frame when it is ready for one;
a slow or stalled viewer simply skips frames. JPEG encoding happens at most once
per frame, in the server's worker threads, and only when someone watches.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import cv2
import numpy as np

JPEG_QUALITY = 80


class Broadcaster:
    def __init__(self, jpeg_quality: int = JPEG_QUALITY) -> None:
        self._quality = jpeg_quality
        self._lock = threading.Lock()
        self._frames: dict[str, np.ndarray] = {}  # "annotated" and "raw" (the source frame, no overlay)
        self._state: dict[str, Any] = {}
        self.sequence = 0
        self._jpegs: dict[str, tuple[int, bytes | None]] = {}  # kind -> (sequence, bytes) cache
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed: asyncio.Event | None = None
        self.closed = False

    # -- pipeline side (any thread) ----------------------------------------
    def publish(self, frame: np.ndarray | None, state: dict[str, Any], raw: np.ndarray | None = None) -> None:
        """Offer the newest annotated frame (BGR), its source frame ``raw``, and the state;
        ``frame`` None updates the state only."""
        with self._lock:
            if frame is not None:
                self._frames["annotated"] = frame
                self._frames["raw"] = raw if raw is not None else frame
                self.sequence += 1
            self._state = state
            loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._wake)
            except RuntimeError:  # the loop closed meanwhile
                pass

    def close(self) -> None:
        self.closed = True
        self.publish(None, self.state())

    # -- server side (event loop) --------------------------------------------
    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._changed = asyncio.Event()

    def _wake(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = asyncio.Event()

    async def wait_change(self, timeout: float = 1.0) -> None:
        """Wait until something is published (or ``timeout`` passes)."""
        event = self._changed
        if event is None:
            await asyncio.sleep(timeout)
            return
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except asyncio.TimeoutError:
            pass

    def state(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._state)

    def jpeg(self, kind: str = "annotated") -> tuple[int, bytes | None]:
        """(sequence, JPEG of the newest ``kind`` frame: "annotated" or "raw"), encoded once per frame.
        Call off the event loop."""
        with self._lock:
            sequence, frame, cached = self.sequence, self._frames.get(kind), self._jpegs.get(kind)
        if frame is None:
            return sequence, None
        if cached is not None and cached[0] == sequence:
            return cached
        ok, encoded = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, self._quality])
        result = (sequence, encoded.tobytes() if ok else None)
        with self._lock:
            if kind not in self._jpegs or self._jpegs[kind][0] < sequence:
                self._jpegs[kind] = result
        return result
