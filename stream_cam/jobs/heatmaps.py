"""Heatmaps in the background: the engine explains the newest frame of every stream, as fast as
it can, in ONE batched call, while the display shows every frame at the source's own rate.

The display hands each new frame to :meth:`BackgroundExplainer.offer` and draws the newest
heatmap :meth:`latest` has for that stream; it never waits for the engine. With a fast model
the heatmap is at most a frame old; with a slow one it is older (the HUD and the log say by
how much) and motion compensation moves it to where the content is now.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Callable, Sequence

from ..engine.stream import StreamChoice
from ..frames import Explanation, Frame
from .pipeline import FramePipeline

if TYPE_CHECKING:  # the engine's module loads TensorFlow
    from ..engine.explainer import Explains

log = logging.getLogger(__name__)

JOIN_TIMEOUT_S = 10.0


class BackgroundExplainer:
    """One engine thread for several streams: ``offer(i, frame)`` in, ``latest(i)`` out."""

    def __init__(self, pipeline: FramePipeline, streams: Sequence[StreamChoice],
                 select: Callable[[], Explains] | None = None) -> None:
        """``select`` (called in the engine thread before each call) returns the engine to use:
        a method switch, including building a new method's graph, never holds the display."""
        self.pipeline = pipeline
        self._select = select
        self.streams = list(streams)
        self._pending: list[Frame | None] = [None] * len(self.streams)
        self._latest: list[Explanation | None] = [None] * len(self.streams)
        self._cond = threading.Condition()
        self._stop = False
        self.failure: BaseException | None = None
        self.updates = [0] * len(self.streams)  # heatmaps computed per stream
        self._thread = threading.Thread(target=self._run, name="stream_cam-engine", daemon=True)
        self._thread.start()

    def offer(self, stream: int, frame: Frame) -> None:
        """The newest frame of ``stream``; an older one not yet explained is simply replaced."""
        with self._cond:
            self._pending[stream] = frame
            self._cond.notify_all()

    def latest(self, stream: int) -> Explanation | None:
        with self._cond:
            if self.failure is not None:
                raise self.failure
            return self._latest[stream]

    def wait_latest(self, stream: int, timeout: float) -> Explanation | None:
        """The newest explanation of ``stream``, waiting up to ``timeout`` s for its first one."""
        deadline = time.perf_counter() + timeout
        with self._cond:
            while self._latest[stream] is None and self.failure is None and not self._stop:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            if self.failure is not None:
                raise self.failure
            return self._latest[stream]

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stop and not any(f is not None for f in self._pending):
                    self._cond.wait()
                if self._stop:
                    return
                work = [(i, f) for i, f in enumerate(self._pending) if f is not None]
                self._pending = [None] * len(self.streams)
            try:
                if self._select is not None:
                    self.pipeline.use(self._select(), self.streams)
                explanations = self.pipeline.explain([f for _, f in work], [self.streams[i] for i, _ in work])
            except Exception as exc:  # noqa: BLE001 - handed to the display loop by latest()
                log.debug("engine thread failed", exc_info=True)
                with self._cond:
                    self.failure = exc
                    self._cond.notify_all()
                return
            with self._cond:
                for (i, _), explanation in zip(work, explanations):
                    self._latest[i] = explanation
                    self.updates[i] += 1
                self._cond.notify_all()  # wakes wait_latest()

    def close(self) -> None:
        """Stop after the current engine call and join the thread."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(JOIN_TIMEOUT_S)
            if self._thread.is_alive():
                log.warning("the engine thread did not stop within %.0f s", JOIN_TIMEOUT_S)

    def __enter__(self) -> "BackgroundExplainer":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
