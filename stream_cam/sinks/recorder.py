"""Recording that starts and stops while the stream runs (``--record`` and the ``r`` key).

A :class:`Recorder` lives in the sink thread: start and stop reach it as commands
through the same queue as the frames, so a recording holds exactly the frames
put between them, and each file is finalized when it stops.

A camera's or stream's reported fps is often a guess (an MJPEG URL says 25 and sends 29),
and a slow model shows fewer frames than the source sends. So the frame rate of a
recording is MEASURED from the timestamps of the frames it gets: the first second (at most
``PROBE_FRAMES`` frames) is held, the rate taken from it, and the file plays in real time.
A file played live has a timeline (``timeline=True``): its recording gets exactly the file's own
rate, and a frame that was never shown (a busy machine) is filled with the frame before it, so
the recording keeps the file's duration.

Like every output, a recording is written under a temporary name and published when it
stops: it never replaces a file, not even one another run made meanwhile.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from .files import publish, temporary_path
from .video import VideoSink
from .worker import Annotated

log = logging.getLogger(__name__)

PROBE_SECONDS = 1.0
PROBE_FRAMES = 30
MIN_FPS, MAX_FPS = 1.0, 240.0


def measured_fps(timestamps: list[float], fallback: float) -> float:
    """Frames per second from capture timestamps (seconds), or ``fallback`` with too few."""
    if len(timestamps) < 2 or timestamps[-1] <= timestamps[0]:
        return fallback
    fps = (len(timestamps) - 1) / (timestamps[-1] - timestamps[0])
    return float(min(max(round(fps, 3), MIN_FPS), MAX_FPS))


class Recorder:
    def __init__(self, fps: float, codec: str = "mp4v", overwrite: bool = False, stream: int = 0,
                 timeline: bool = False) -> None:
        self.stream = stream  # with several sources, each has its recorder: it takes only its own frames
        self.fps = fps  # the source's reported rate: a file's own (timeline), else used only with too few frames
        self.timeline = timeline
        self._last: tuple[int, np.ndarray] | None = None  # (frame index, image) last written, with a timeline
        self.filled = 0  # frames of a timeline that were never shown, filled with the one before
        self.codec = codec
        self.overwrite = overwrite
        self.video: VideoSink | None = None
        self._target: Path | None = None  # the name the current recording will be published under
        self._held: list[tuple[np.ndarray, float]] = []  # (frame, timestamp) while measuring the rate
        self.finished: list[tuple[Path, int]] = []  # (path, frames) of closed recordings
        self.rates: list[float] = []  # the measured fps of each recording

    @property
    def active(self) -> bool:
        return self._target is not None

    def start(self, path: Path) -> None:
        """Record from the next frame on (the writer opens with that frame's size)."""
        self.stop()
        self._target = path

    def stop(self) -> None:
        if self._target is not None and self.video is None and self._held:
            self._open(self._target)  # a recording shorter than the probe: measure from what there is
        target, self._target = self._target, None
        video, self.video = self.video, None
        self._last = None
        if video is not None:
            video.close()
            final = (publish(video.path, target, self.overwrite, elsewhere=True)
                     if video.frames_written and target is not None else None)
            if final is None:
                video.path.unlink(missing_ok=True)
            else:
                self.finished.append((final, video.frames_written))

    def write_annotated(self, item: Annotated) -> None:
        if self._target is None or item.stream != self.stream or item.image is None:
            return
        start = time.perf_counter()
        if self.timeline:
            self._write_on_timeline(self._target, item.shown.index, item.image)
        elif self.video is None:
            self._held.append((item.image, item.shown.timestamp))
            span = self._held[-1][1] - self._held[0][1]
            if span >= PROBE_SECONDS or len(self._held) >= PROBE_FRAMES:
                self._open(self._target)
        else:
            self.video.write(item.image)
        item.timings["write"] = item.timings.get("write", 0.0) + (time.perf_counter() - start) * 1000

    def _write_on_timeline(self, target: Path, index: int, image: np.ndarray) -> None:
        """A file's frames at the file's own rate; a gap (frames never shown) repeats the frame before it.
        A jump back (a looping file starting again) starts the count anew."""
        if self.video is None:
            height, width = image.shape[:2]
            self.video = VideoSink(temporary_path(target), width, height, self.fps, self.codec,
                                   overwrite=True).open()
            self.rates.append(self.video.fps)
            log.info("recording %s at the file's own %.3f fps", target, self.fps)
        elif self._last is not None and index > self._last[0] + 1:
            for _ in range(index - self._last[0] - 1):
                self.video.write(self._last[1])
                self.filled += 1
        self.video.write(image)
        self._last = (index, image)

    def _open(self, target: Path) -> None:
        """Open the writer at the measured rate and write the frames held so far."""
        held, self._held = self._held, []
        fps = measured_fps([t for _, t in held], self.fps)
        height, width = held[0][0].shape[:2]
        self.video = VideoSink(temporary_path(target), width, height, fps, self.codec, overwrite=True).open()
        self.rates.append(fps)
        log.info("recording %s at %.3f fps (measured; the source reports %.2f)", target, fps, self.fps)
        for image, _ in held:
            self.video.write(image)

    def close(self) -> None:
        self.stop()
