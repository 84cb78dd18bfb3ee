"""Video sources: cameras, streams, files and generated clips, read in their own thread.

Two ways to consume a source, one per use:

* :class:`OrderedFrames` (video files): every frame, in order, through a
  bounded queue. The reader waits when the consumer is slower; nothing is lost.
* :class:`LatestFrames` (live): only the NEWEST frame is kept. A slow consumer
  skips stale frames (counted as dropped); latency stays bounded and no queue
  grows. A file played live is paced at its own frame rate, like a camera.

Both guarantee a first frame or raise :class:`ConnectionError`, and ``close()``
stops and joins the reader thread (with a timeout) and releases the capture.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Protocol, Sequence

import cv2
import numpy as np

from ..errors import InputError
from .images import to_rgb8

log = logging.getLogger(__name__)

FALLBACK_FPS = 30.0
OPEN_TIMEOUT_MS = 5000
JOIN_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class VideoInfo:
    """What a source delivers: frame size, frames per second, and frame count if known."""

    width: int
    height: int
    fps: float
    frame_count: int | None
    source: str
    live: bool

    @property
    def resolution(self) -> tuple[int, int]:
        return self.width, self.height


@dataclass
class Frame:
    """One BGR frame, its position in the source, and when it was captured."""

    index: int
    image: np.ndarray
    timestamp: float  # seconds in the source's own timeline (index / fps for files)
    captured_at: float  # time.perf_counter() when the reader got it
    prepared: np.ndarray | None = None  # model input, when the reader thread prepared it


class Reader(Protocol):
    """The minimal capture interface: OpenCV's VideoCapture, or a generated clip."""

    info: VideoInfo

    def read(self) -> np.ndarray | None: ...

    def release(self) -> None: ...


def as_bgr8(image: np.ndarray) -> np.ndarray:
    """Every frame leaves a source as uint8 (H, W, 3): a grayscale, 4-channel, 16-bit or
    float frame in the middle of a stream is converted, not fatal."""
    if image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3:
        return image
    return to_rgb8(image, "frame")


def sane_fps(fps: float) -> float:
    """A camera reporting 0, NaN or nonsense gets 30 fps."""
    return fps if fps and math.isfinite(fps) and 1.0 <= fps <= 1000.0 else FALLBACK_FPS


class CaptureReader:
    """cv2.VideoCapture on a camera index, device path, URL or file."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.capture = _open_capture(spec)
        width = int(self.capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(self.capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        count = int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT))
        live = is_live_spec(spec)
        self.info = VideoInfo(width, height, sane_fps(self.capture.get(cv2.CAP_PROP_FPS)),
                              count if count > 0 and not live else None, spec, live)

    def read(self) -> np.ndarray | None:
        ok, image = self.capture.read()
        return as_bgr8(image) if ok and image is not None and image.size else None

    def release(self) -> None:
        self.capture.release()


class ArrayReader:
    """Frames from a sequence or a callable ``index -> frame | None`` (demo clips, tests)."""

    def __init__(self, frames: Sequence[np.ndarray] | Callable[[int], np.ndarray | None],
                 fps: float = FALLBACK_FPS, name: str = "generated", count: int | None = None,
                 live: bool = False) -> None:
        self._frames = frames
        self._next = 0
        self._count = len(frames) if not callable(frames) else count
        first = self._get(0)
        if first is None:
            raise ConnectionError(f"{name}: no frames")
        height, width = first.shape[:2]
        self.info = VideoInfo(width, height, sane_fps(fps), self._count, name, live)

    def _get(self, index: int) -> np.ndarray | None:
        if callable(self._frames):
            return self._frames(index)
        return self._frames[index] if index < len(self._frames) else None

    def read(self) -> np.ndarray | None:
        frame = self._get(self._next)
        self._next += 1
        return None if frame is None else as_bgr8(frame)

    def release(self) -> None:
        self._next = self._count or self._next


def is_live_spec(spec: str) -> bool:
    return spec.isdigit() or spec.startswith("/dev/video") or "://" in spec


def _open_capture(spec: str) -> cv2.VideoCapture:
    """Open a capture or raise a clear error; never hang longer than OPEN_TIMEOUT_MS."""
    if spec.isdigit():
        capture = cv2.VideoCapture(int(spec))
        if not capture.isOpened():
            raise ConnectionError(f"cannot open camera {spec}: is one connected, and free? "
                                  "(try --source /dev/videoN, a URL or a video file)")
        return capture
    if "://" in spec:
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, OPEN_TIMEOUT_MS, cv2.CAP_PROP_READ_TIMEOUT_MSEC, OPEN_TIMEOUT_MS]
        capture = cv2.VideoCapture(spec, cv2.CAP_FFMPEG, params)
        if not capture.isOpened():
            raise ConnectionError(f"cannot open stream {spec}: no answer within {OPEN_TIMEOUT_MS // 1000} s "
                                  "or not a video stream")
        return capture
    path = Path(spec)
    if not spec.startswith("/dev/video"):
        if not path.exists():
            raise InputError(f"{spec}: no such file")
        if path.is_dir():
            raise InputError(f"{spec}: is a folder, not a video")
        if path.stat().st_size == 0:
            raise InputError(f"{spec}: the file is empty")
    capture = cv2.VideoCapture(spec)
    if not capture.isOpened():
        raise InputError(f"{spec}: not a video OpenCV can read (try .mp4, .avi or .mkv)")
    return capture


def open_reader(spec: str) -> Reader:
    """A :class:`Reader` for a camera index, /dev/videoN, URL or file."""
    return CaptureReader(str(spec))


class _Pump:
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

    def __enter__(self):
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


_END = object()


class OrderedFrames(_Pump):
    """Every frame in order, through a bounded queue (video files).

    ``prepare`` (e.g. the model's preprocessing) runs in the reader thread, so it
    overlaps with the engine instead of delaying it.
    """

    def __init__(self, reader: Reader, maxsize: int = 16,
                 prepare: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        super().__init__(reader, "stream_cam-reader")
        self._queue: queue.Queue = queue.Queue(maxsize=maxsize)
        self._prepare = prepare
        self._thread.start()

    def _run(self) -> None:
        index = 0
        fps = self.info.fps
        while not self.stopping:
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


class LatestFrames(_Pump):
    """Only the newest frame (live). ``get()`` waits for a frame newer than the last one.

    ``pace=True`` plays a file at its own frame rate, the way a camera delivers.
    With ``reopen``, a source that ends or fails is opened again: at once the
    first time (a looping file), then with backoff (0.5 s doubling to 5 s) while
    it keeps failing; ``reconnecting`` says so meanwhile. Without ``reopen`` the
    end of the source is the end of the stream.
    """

    MAX_BACKOFF_S = 5.0

    def __init__(self, reader: Reader, pace: bool = False, reopen: Callable[[], Reader] | None = None) -> None:
        super().__init__(reader, "stream_cam-capture")
        self._pace = pace
        self._reopen = reopen
        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._taken = -1
        self.delivered = 0
        self.dropped = 0
        self.failures = 0  # consecutive failed reads or reopens
        self.last_error = ""
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
            with self._cond:
                if self._latest is not None and self._latest.index > self._taken:
                    self.dropped += 1  # never consumed: replaced by a newer frame
                self._latest = Frame(index, image, index * interval, time.perf_counter())
                self._cond.notify_all()
            index += 1

    def _on_end(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _wake(self) -> None:
        self._on_end()

    def get(self, timeout: float | None = None) -> Frame | None:
        """The newest frame not yet returned; None at the end of the source or on timeout."""
        deadline = None if timeout is None else time.perf_counter() + timeout
        with self._cond:
            while self._latest is None or self._latest.index <= self._taken:
                if self.ended.is_set() or self.stopping:
                    if self.failure is not None:
                        raise self.failure
                    return None
                remaining = None if deadline is None else deadline - time.perf_counter()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)
            frame = self._latest
            self._taken = frame.index
            self.delivered += 1
            return frame


def first_frame_or_fail(source: LatestFrames | OrderedFrames, timeout: float = OPEN_TIMEOUT_MS / 1000) -> None:
    """Raise ConnectionError unless the source can deliver a first frame within ``timeout``."""
    if isinstance(source, LatestFrames):
        deadline = time.perf_counter() + timeout
        with source._cond:
            while source._latest is None and not source.ended.is_set():
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                source._cond.wait(remaining)
            ok = source._latest is not None
    else:
        ok = source.info.width > 0
    if not ok:
        source.close()
        if source.failure is not None:
            raise ConnectionError(f"{source.info.source}: {source.failure}") from source.failure
        raise ConnectionError(f"{source.info.source}: opened, but no frame arrived within {timeout:.0f} s")
