"""The live kind of reader thread: only the NEWEST frame is kept, stale ones are dropped."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Callable

import cv2
import numpy as np

from ..errors import InputError
from ..frames import Frame
from .pumps import Pump
from .readers import Reader

log = logging.getLogger(__name__)


class LatestFrames(Pump):
    """Only the newest frame (live). ``get()`` waits for a frame newer than the last one.

    ``pace=True`` plays a file at its own frame rate, the way a camera delivers. A file has a
    timeline, so a consumer that falls behind for a moment (the engine took the CPU) is given
    the frames it missed, up to :data:`FILE_BACKLOG` of them, instead of losing them; a camera
    keeps only the newest frame.
    With ``reopen``, a source that ends or fails is opened again: at once the
    first time (a looping file), then with backoff (0.5 s doubling to 5 s) while
    it keeps failing; ``reconnecting`` says so meanwhile. Without ``reopen`` the
    end of the source is the end of the stream.
    """

    MAX_BACKOFF_S = 5.0
    FILE_BACKLOG = 6  # frames: 0.24 s at 25 fps

    def __init__(self, reader: Reader, pace: bool = False, reopen: Callable[[], Reader] | None = None,
                 on_frame: Callable[[], None] | None = None) -> None:
        """``on_frame`` is called (in the reader thread) after each new frame: a consumer of
        several sources waits on one event instead of polling them."""
        super().__init__(reader, "stream_cam-capture")
        self._pace = pace
        self._reopen: Callable[[], Reader] | None = reopen
        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._backlog: deque[Frame] = deque(maxlen=self.FILE_BACKLOG if pace else 1)  # not yet taken
        self.dropped = 0
        self.failures = 0  # consecutive failed reads or reopens
        self.last_error = ""
        self._on_frame = on_frame
        self._thread.start()

    @property
    def reconnecting(self) -> bool:
        return self.failures > 0 and not self.ended.is_set()

    def _read(self) -> np.ndarray | None:
        try:
            return self.reader.read()
        except (cv2.error, OSError, ValueError, RuntimeError) as exc:
            self.last_error = str(exc) or type(exc).__name__
            return None

    def _reopen_after_failure(self) -> bool:
        """Open the source again, backing off while it fails. False when stopping."""
        self.reader.release()
        while not self.stopping:
            delay = 0.0 if self.failures == 0 else min(0.5 * 2 ** (self.failures - 1), self.MAX_BACKOFF_S)
            self.failures += 1
            if delay and self._stop.wait(delay):
                return False
            if self._reopen is None:
                return False
            try:
                self.reader = self._reopen()
                return True
            except (ConnectionError, InputError, OSError, cv2.error) as exc:
                self.last_error = str(exc)
                log.info("reopening %s failed (attempt %d): %s", self.info.source, self.failures, exc)
        return False

    def _run(self) -> None:
        interval = 1.0 / self.info.fps
        index = 0
        start = time.perf_counter()
        first_at: float | None = None
        while not self.stopping:
            image = self._read()
            if image is None:
                if self._reopen is None or not self._reopen_after_failure():
                    return
                start = time.perf_counter() - index * interval  # pace on from here
                continue
            self.failures = 0
            if self._pace:
                # Deliver frame i at start + i / fps; if we are late, deliver at once.
                delay = start + index * interval - time.perf_counter()
                if delay > 0 and self._stop.wait(delay):
                    return
            now = time.perf_counter()
            if first_at is None:
                first_at = now
            # A file keeps its own timeline; a camera or stream is timed by arrival (its fps is a guess).
            timestamp = index * interval if self._pace else now - first_at
            with self._cond:
                if len(self._backlog) == self._backlog.maxlen:
                    self.dropped += 1  # never consumed: pushed out by a newer frame
                self._latest = Frame(index, image, timestamp, now)
                self._backlog.append(self._latest)
                self._cond.notify_all()
            if self._on_frame is not None:
                self._on_frame()
            index += 1

    def _on_end(self) -> None:
        with self._cond:
            self._cond.notify_all()
        if self._on_frame is not None:
            self._on_frame()  # wake a consumer waiting for any source: this one has ended

    def _wake(self) -> None:
        self._on_end()

    def _has_first_frame(self, timeout: float) -> bool:
        deadline = time.perf_counter() + timeout
        with self._cond:
            while self._latest is None and not self.ended.is_set():
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            return self._latest is not None

    def get(self, timeout: float | None = None) -> Frame | None:
        """The newest frame not yet returned; None at the end of the source or on timeout."""
        deadline = None if timeout is None else time.perf_counter() + timeout
        with self._cond:
            while not self._backlog:
                if self.ended.is_set() or self.stopping:
                    if self.failure is not None:
                        raise self.failure
                    return None
                remaining = None if deadline is None else deadline - time.perf_counter()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)
            return self._backlog.popleft()
