"""One thread that feeds annotated frames to the file sinks, through a bounded queue.

The engine never waits on disk: it hands each annotated frame to
:class:`SinkThread`, whose queue is bounded (back-pressure, no growth). The
thread writes the video frame, then the frame's log line, so a log line always
means the frame is in the file. ``close()`` drains the queue, finalizes every
sink, and joins the thread.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol, TextIO

import numpy as np

from .. import jsontext
from ..errors import OutputError
from ..frames import Explanation, Frame, score_value
from ..pixels import peak_xy
from .files import open_published

log = logging.getLogger(__name__)

JOIN_TIMEOUT_S = 10.0


@dataclass
class Annotated:
    """An annotated frame on its way to the sinks, with its stage timings (ms).

    Live, the heatmap shown may have been computed on an earlier frame of the stream:
    ``frame`` is the frame shown, ``explanation.frame`` the one the heatmap comes from."""

    image: np.ndarray | None  # filled by the job's render step before it is queued
    explanation: Explanation
    timings: dict[str, float] = field(default_factory=dict)
    frame: Frame | None = None  # the frame shown (default: the explained one)
    stream: int = 0  # which source, when there are several
    heatmap: np.ndarray | None = None  # the map shown (default: the explanation's)
    stability: float | None = None  # correlation of this heatmap with the stream's previous one (same class)
    screen: np.ndarray | None = None  # the window's picture (REC, messages, key list), when it differs from image

    @property
    def shown(self) -> Frame:
        return self.frame if self.frame is not None else self.explanation.frame


class Sink(Protocol):
    def write_annotated(self, item: Annotated) -> None: ...

    def close(self) -> None: ...


class VideoFileSink:
    """Adapts a :class:`~stream_cam.sinks.video.VideoSink` to the Sink protocol. The job that opened
    the file finalizes it once, after the sink thread is joined (and also when it never started)."""

    def __init__(self, video) -> None:
        self.video = video

    def write_annotated(self, item: Annotated) -> None:
        start = time.perf_counter()
        self.video.write(item.image)
        item.timings["write"] = item.timings.get("write", 0.0) + (time.perf_counter() - start) * 1000

    def close(self) -> None:
        """Nothing: the file is the job's to finalize (see the class docstring)."""


def frame_record(item: Annotated, label: Callable[[int], str]) -> dict:
    """What is known of one annotated frame, JSON-ready: the log's line, the results table's row."""
    e, shown = item.explanation, item.shown
    score = e.score
    heat = item.heatmap if item.heatmap is not None else e.heatmap
    height, width = shown.image.shape[:2]
    return {
        "frame": shown.index,
        "stream": item.stream,
        "heatmap_frame": e.frame.index,  # the frame the shown heatmap was computed on (<= frame)
        "method": e.method,
        "runtime": e.runtime,
        "device": e.device,
        "stability": None if item.stability is None else round(item.stability, 4),
        "trust": None if e.trust is None else round(e.trust, 4),
        "t": round(shown.timestamp, 4),  # the source's time: a file's own, a camera's by arrival
        "wall": round(shown.wall, 3),  # Unix time of capture
        "top": [{"index": c, "label": label(c), "score": score_value(p)} for c, p in e.top],
        "explained": {"index": e.class_index, "label": label(e.class_index),
                      "score": score_value(score),
                      "peak_xy": list(peak_xy(heat, height, width))},
        "ms": {k: round(v, 3) for k, v in {"write": 0.0, **item.timings}.items()},
    }


class JsonlLog:
    """One JSON line per frame: index, time, top-k, explained class and peak, stage ms."""

    def __init__(self, path: str | Path, label: Callable[[int], str], overwrite: bool = False) -> None:
        self.path = Path(path)
        self._label = label
        # Made under a temporary name and renamed into place: a link at ``path`` is replaced, never
        # written through; the file keeps growing under its final name, so it can be followed.
        _, handle = open_published(self.path, overwrite)
        self._file: TextIO | None = handle
        self.lines = 0

    def record(self, item: Annotated) -> dict:
        return frame_record(item, self._label)

    def write_annotated(self, item: Annotated) -> None:
        if self._file is None:
            return
        self._file.write(jsontext.dumps(self.record(item)) + "\n")
        self._file.flush()
        self.lines += 1

    def close(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            file.close()


_STOP = object()


class SinkThread:
    """Runs sinks in one background thread, fed by a bounded queue."""

    def __init__(self, sinks: list[Sink], maxsize: int = 8) -> None:
        self.sinks = list(sinks)
        self.failure: BaseException | None = None
        self.closed = False
        self._queue: queue.Queue = queue.Queue(maxsize=maxsize)
        self._thread = threading.Thread(target=self._run, name="stream_cam-sinks", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if self.failure is not None:
                continue  # drain without writing after a failure, so put() never blocks forever
            try:
                if callable(item):
                    item()
                    continue
                for sink in self.sinks:
                    sink.write_annotated(item)
            except Exception as exc:  # noqa: BLE001 - any failure (cv2.error too) is handed to put()/close()
                self.failure = exc
                log.debug("sink failed", exc_info=True)

    def _check(self) -> None:
        if self.failure is not None:
            raise OutputError(f"writing failed: {self.failure}") from self.failure
        if not self._thread.is_alive():
            raise OutputError("writing failed: the writer thread has stopped")

    def put(self, item: Annotated | Callable[[], None]) -> None:
        """Queue a frame; blocks while the queue is full (the writer sets the pace).

        Raises :class:`OutputError` once writing has failed, instead of waiting on a
        queue that nobody empties any more."""
        while True:
            self._check()
            try:
                self._queue.put(item, timeout=0.25)
                return
            except queue.Full:
                continue

    def call(self, command: Callable[[], None]) -> None:
        """Run ``command`` in the writer thread, in order with the frames (start/stop recording)."""
        self.put(command)

    def close(self) -> None:
        """Write what is queued, finalize every sink, join the thread. Safe to call twice."""
        if self.closed:
            return
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(JOIN_TIMEOUT_S)
            if self._thread.is_alive():
                log.warning("the writer thread did not finish within %.0f s", JOIN_TIMEOUT_S)
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as exc:  # noqa: BLE001 - every sink gets closed; the first failure is kept
                self.failure = self.failure or exc
        self.closed = True

    def __enter__(self) -> "SinkThread":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
