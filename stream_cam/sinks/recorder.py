"""Recording that starts and stops while the stream runs (``--record`` and the ``r`` key).

A :class:`Recorder` lives in the sink thread: start and stop reach it as commands
through the same queue as the frames, so a recording holds exactly the frames
put between them, and each file is finalized when it stops.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from .video import VideoSink
from .worker import Annotated

log = logging.getLogger(__name__)


class Recorder:
    def __init__(self, fps: float, codec: str = "mp4v", overwrite: bool = False) -> None:
        self.fps = fps
        self.codec = codec
        self.overwrite = overwrite
        self.video: VideoSink | None = None
        self._pending: Path | None = None
        self.finished: list[tuple[Path, int]] = []  # (path, frames) of closed recordings

    def start(self, path: Path) -> None:
        """Record from the next frame on (the writer opens with that frame's size)."""
        self.stop()
        self._pending = path

    def stop(self) -> None:
        self._pending = None
        video, self.video = self.video, None
        if video is not None:
            video.close()
            self.finished.append((video.path, video.frames_written))

    def write_annotated(self, item: Annotated) -> None:
        if self._pending is not None:
            height, width = item.image.shape[:2]
            path, self._pending = self._pending, None
            self.video = VideoSink(path, width, height, self.fps, self.codec, self.overwrite).open()
        if self.video is not None:
            start = time.perf_counter()
            self.video.write(item.image)
            item.timings["write"] = item.timings.get("write", 0.0) + (time.perf_counter() - start) * 1000

    def close(self) -> None:
        self.stop()
