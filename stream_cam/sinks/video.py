"""Video writers: OpenCV for mp4v/MJPG/XVID, PyAV (libx264) for browser-playable H.264.

:class:`VideoSink` is a context manager: the file is finalized (playable, every
frame written so far) however the block ends: normally, by an exception, by
Ctrl-C or by SIGTERM (which the jobs turn into an orderly stop).
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..checks import installed
from ..errors import InputError, OutputError
from .files import check_output_path

log = logging.getLogger(__name__)

# codec name -> (fourcc for OpenCV, or None for PyAV), suitable containers
CODECS: dict[str, tuple[str | None, tuple[str, ...]]] = {
    "mp4v": ("mp4v", (".mp4", ".mov", ".mkv")),
    "mjpg": ("MJPG", (".avi", ".mkv")),
    "xvid": ("XVID", (".avi", ".mkv")),
    "h264": (None, (".mp4", ".mkv", ".mov")),
}
DEFAULT_CODEC = "mp4v"
# OpenCV's VideoWriter reports no write errors, so a full disk would go unnoticed and the
# file's index could not be written at the end. Stop while there is still room to finalize.
MIN_FREE_BYTES = 64 * 2**20
FREE_SPACE_CHECK_EVERY = 30  # frames


# Rates that players and encoders know exactly (NTSC's are rational: 30000/1001, not 29.97).
COMMON_RATES = tuple(Fraction(n, d) for n, d in (
    (24000, 1001), (24, 1), (25, 1), (30000, 1001), (30, 1), (48, 1), (50, 1), (60000, 1001), (60, 1),
    (90, 1), (100, 1), (120000, 1001), (120, 1), (144, 1), (240, 1)))
SNAP_TOLERANCE = 0.001  # a measured rate within 0.1% of a common rate becomes it


def writer_rate(fps: float) -> Fraction:
    """The rate a writer is given: the input's own common rate, else the nearest one within 0.1%,
    else ``fps`` to 1/100.

    An exact match wins first: 24 fps stays 24 although 24000/1001 is within 0.1% of it. FFmpeg's
    MPEG-4 encoder refuses a time base denominator above 65535, and OpenCV turns a rate such as
    219.697 into one (measured: 130 of 300 rates from 60 to 300 fps failed, none once rounded to
    two decimals). A hundredth of a frame per second is below what a player can show."""
    fps = float(fps)
    for common in COMMON_RATES:
        if abs(fps - float(common)) <= 1e-6 * float(common):
            return common
    nearest = min(COMMON_RATES, key=lambda common: abs(fps - float(common)))
    if abs(fps - float(nearest)) <= SNAP_TOLERANCE * float(nearest):
        return nearest
    return Fraction(round(fps * 100), 100)


def opencv_keeps(rate: Fraction) -> bool:
    """Whether OpenCV's writers store ``rate`` exactly: they take a float and keep it to 1/100
    (measured: 30000/1001 is written as 2997/100, 24000/1001 as 2997/125)."""
    return rate == Fraction(round(float(rate) * 100), 100)


def pyav_mpeg4_keeps(rate: Fraction) -> bool:
    """Whether PyAV's MPEG-4 encoder can write ``rate`` (its time base denominator is at most 65535)."""
    return rate.numerator <= 65535


def check_codec(codec: str, path: Path) -> str:
    """Validate the codec name and that the file's container can hold it."""
    name = codec.lower()
    if name not in CODECS:
        raise InputError(f"unknown codec {codec!r}; choose one of: {', '.join(CODECS)}")
    suffixes = CODECS[name][1]
    if path.suffix.lower() not in suffixes:
        raise InputError(f"codec {name} needs a {'/'.join(suffixes)} file, not {path.name!r}")
    if name == "h264":
        try:
            import av  # noqa: F401
        except ImportError as exc:
            raise InputError("--codec h264 needs PyAV: pip install 'stream-cam[h264]' (or pip install av)") from exc
    return name


@dataclass
class _PyAVWriter:
    """H.264 through PyAV/libx264, yuv420p so every browser plays it."""

    path: Path
    width: int
    height: int
    rate: Fraction
    encoder: str = "libx264"  # or "mpeg4": mp4v at a rate OpenCV would round (30000/1001)

    def __post_init__(self) -> None:
        import av

        self._av = av
        self._container = av.open(str(self.path), mode="w")
        stream: Any = self._container.add_stream(self.encoder, rate=self.rate)  # a video stream
        stream.width, stream.height = self.width, self.height  # even: VideoSink pads
        stream.pix_fmt = "yuv420p"
        if self.encoder == "libx264":
            stream.options = {"preset": "ultrafast", "crf": "23"}
        else:  # OpenCV's own MPEG-4 bit rate (one bit per pixel per second): the same quality
            stream.bit_rate = int(self.width * self.height * float(self.rate))
        self._stream = stream

    def write(self, frame: np.ndarray) -> None:
        video_frame = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="bgr24")
        for packet in self._stream.encode(video_frame):
            self._container.mux(packet)

    def release(self) -> None:
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()


class VideoSink:
    """Write BGR frames of one size to a video file; always finalized on exit.

    Refuses to replace an existing file unless ``overwrite``. Frames of another
    size (a camera switching resolution) are resized to the first frame's size.

    The encoders here (MPEG-4, H.264, and OpenCV's writers) store only even sizes, and
    OpenCV would silently crop a row or column. An odd size is instead PADDED by one pixel
    (the last column and/or row repeated), so every pixel of the input is kept:
    ``padded`` says so, and ``encoded_size`` is the size in the file.
    """

    def __init__(self, path: str | Path, width: int, height: int, fps: float,
                 codec: str = DEFAULT_CODEC, overwrite: bool = False) -> None:
        self.path = Path(path)
        self.codec = check_codec(codec, self.path)
        check_output_path(self.path, overwrite)
        self.size = (int(width), int(height))
        self.encoded_size = (self.size[0] + self.size[0] % 2, self.size[1] + self.size[1] % 2)
        self.padded = self.encoded_size != self.size
        self.rate = writer_rate(fps)  # exact (a Fraction): what the file's header says
        self.fps = float(self.rate)
        self.frames_written = 0
        self._writer: cv2.VideoWriter | _PyAVWriter | None = None

    def open(self) -> "VideoSink":
        fourcc = CODECS[self.codec][0]
        try:
            if fourcc is None:
                self._writer = _PyAVWriter(self.path, *self.encoded_size, self.rate)
            elif self._needs_pyav_mpeg4():
                self._writer = _PyAVWriter(self.path, *self.encoded_size, self.rate, encoder="mpeg4")
            else:
                writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter.fourcc(*fourcc), self.fps,
                                         self.encoded_size)
                if not writer.isOpened():
                    writer.release()
                    raise OutputError(f"cannot write {self.path} with codec {self.codec}: OpenCV could not "
                                      "open a writer (is the folder writable? try --codec mjpg with .avi)")
                self._writer = writer
        except OSError as exc:
            raise OutputError(f"cannot write {self.path}: {exc}") from exc
        log.info("recording to %s (%s, %dx%d, %s fps)", self.path, self.codec, *self.size, self.rate)
        return self

    def _needs_pyav_mpeg4(self) -> bool:
        """mp4v at a rate OpenCV would round (NTSC's 30000/1001): written by PyAV's MPEG-4 encoder,
        which keeps it. Without PyAV (or where MPEG-4 cannot hold the rate) OpenCV writes the rate
        to 1/100, and the log says so once."""
        if self.codec != "mp4v" or opencv_keeps(self.rate):
            return False
        if pyav_mpeg4_keeps(self.rate) and installed("av"):
            return True
        log.warning("%s is written at %.2f fps, not exactly %s fps: %s", self.path.name, self.fps, self.rate,
                    "pip install av keeps the exact rate" if pyav_mpeg4_keeps(self.rate)
                    else "MPEG-4 cannot hold it; --codec h264 can")
        return False

    def write(self, frame: np.ndarray) -> None:
        if self._writer is None:
            raise OutputError(f"{self.path} is not open for writing")
        if self.frames_written % FREE_SPACE_CHECK_EVERY == 0:
            self._check_free_space()
        if (frame.shape[1], frame.shape[0]) != self.size:
            frame = cv2.resize(frame, self.size, interpolation=cv2.INTER_AREA)
        if self.padded:
            right, bottom = self.encoded_size[0] - self.size[0], self.encoded_size[1] - self.size[1]
            frame = cv2.copyMakeBorder(frame, 0, bottom, 0, right, cv2.BORDER_REPLICATE)
        self._writer.write(frame)
        self.frames_written += 1

    def _check_free_space(self) -> None:
        try:
            free = shutil.disk_usage(self.path.parent).free
        except OSError as exc:
            raise OutputError(f"cannot write {self.path}: {exc.strerror or exc}") from exc
        if free < MIN_FREE_BYTES:
            raise OutputError(f"the disk holding {self.path} is almost full ({free // 2**20} MB free): stopped "
                              f"after {self.frames_written} frames, which stay playable; free some space")

    def close(self) -> None:
        """Finalize the file (write the index/trailer). Safe to call twice."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.release()
            log.info("finalized %s: %d frames", self.path, self.frames_written)

    def __enter__(self) -> "VideoSink":
        return self.open()

    def __exit__(self, *exc_info: object) -> None:
        self.close()
