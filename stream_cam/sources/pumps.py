"""Reader threads: a source read in its own thread, stopped and joined on ``close()``.

:class:`Pump` is the thread with its stop flag; :class:`OrderedFrames` hands on every
frame in order through a bounded queue (video files). ``latest.py`` has the live kind.
Every pump guarantees a first frame or raises :class:`ConnectionError`.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Callable, Iterator

import numpy as np

from ..frames import Frame
from .readers import OPEN_TIMEOUT_MS, Reader

log = logging.getLogger(__name__)

JOIN_TIMEOUT_S = 2.0


class Pump:
    """A reader thread with a stop flag, joined on close()."""

    def __init__(self, reader: Reader, name: str) -> None:
        self.reader = reader
        self.info = reader.info
        self._stop = threading.Event()
        self.failure: BaseException | None = None
        self.ended = threading.Event()
        self._thread = threading.Thread(target=self._run_guarded, name=name, daemon=True)

    def _run_guarded(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, not swallowed
            log.debug("reader thread failed", exc_info=True)
            self.failure = exc
        finally:
            self.ended.set()
            self._on_end()

    def _run(self) -> None:
        raise NotImplementedError

    def _on_end(self) -> None:
        pass

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def close(self) -> None:
        """Stop the reader thread, join it, release the capture. Safe to call twice."""
        self._stop.set()
        self._wake()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(JOIN_TIMEOUT_S)
            if self._thread.is_alive():
                log.warning("reader thread did not stop within %.0f s", JOIN_TIMEOUT_S)
        self.reader.release()

    def _wake(self) -> None:
        pass

    def _has_first_frame(self, timeout: float) -> bool:
        """Whether a first frame is there (waiting up to ``timeout`` s where that makes sense)."""
        return self.info.width > 0

    def first_frame_or_fail(self, timeout: float = OPEN_TIMEOUT_MS / 1000) -> None:
        """Raise ConnectionError (and close) unless a first frame arrives within ``timeout`` s."""
        if self._has_first_frame(timeout):
            return
        self.close()
        if self.failure is not None:
            raise ConnectionError(f"{self.info.source}: {self.failure}") from self.failure
        raise ConnectionError(f"{self.info.source}: opened, but no frame arrived within {timeout:.0f} s")

    def __enter__(self):
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


_END = object()


class OrderedFrames(Pump):
    """Every frame in order, through a bounded queue (video files).

    ``prepare`` (e.g. the model's preprocessing) runs in the reader thread, so it
    overlaps with the engine instead of delaying it.
    """

    def __init__(self, reader: Reader, maxsize: int = 16,
                 prepare: Callable[[np.ndarray], np.ndarray | None] | None = None,
                 first: int = 0, stop: int | None = None) -> None:
        """``first``/``stop``: only frames first..stop-1 (the reader is already at ``first``),
        numbered and timed as in the whole file."""
        super().__init__(reader, "stream_cam-reader")
        self._queue: queue.Queue = queue.Queue(maxsize=maxsize)
        self._prepare = prepare
        self._first, self._last = first, stop
        self._thread.start()

    def _run(self) -> None:
        index = self._first
        fps = self.info.fps
        while not self.stopping and (self._last is None or index < self._last):
            image = self.reader.read()
            if image is None:
                break
            frame = Frame(index, image, index / fps, time.perf_counter())
            if self._prepare is not None:
                frame.prepared = self._prepare(image)
            if not self._put(frame):
                return
            index += 1

    def _put(self, item: object) -> bool:
        while not self.stopping:
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _on_end(self) -> None:
        self._put(_END)

    def _wake(self) -> None:
        try:
            while True:
                self._queue.get_nowait()
        except queue.Empty:
            pass

    def __iter__(self) -> Iterator[Frame]:
        while True:
            item = self._queue.get()
            if item is _END:
                if self.failure is not None:
                    raise self.failure
                return
            yield item
