"""Readers: open a camera, URL, file or generated clip and read BGR frames from it, one call at a time.

:class:`CaptureReader` wraps ``cv2.VideoCapture``; :class:`ArrayReader` serves frames from
memory (the demo, tests). Both describe themselves with a :class:`VideoInfo`.
"""

from __future__ import annotations

import base64
import logging
import math
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence

import cv2
import numpy as np

from ..errors import InputError
from ..pixels import to_rgb8
from ..redact import redact
from .cameras import CameraSettings, apply_settings, check_camera_exists
from .paths import check_input_file

log = logging.getLogger(__name__)

FALLBACK_FPS = 30.0
OPEN_TIMEOUT_MS = 5000


@dataclass(frozen=True)
class VideoInfo:
    """What a source delivers: frame size, frames per second, and frame count if known."""

    width: int
    height: int
    fps: float
    frame_count: int | None
    source: str
    live: bool


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

    def __init__(self, spec: str, settings: CameraSettings | None = None,
                 capture_class: Callable[..., Any] = cv2.VideoCapture) -> None:
        self.spec = spec
        self.settings = settings or CameraSettings()
        self._capture_class = capture_class
        self.capture = _open_capture(spec, self.settings, capture_class)
        width = int(self.capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(self.capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        count = int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT))
        live = is_live_spec(spec)
        # info.source is what screens, logs and the browser show: never a password or token.
        self.info = VideoInfo(width, height, sane_fps(self.capture.get(cv2.CAP_PROP_FPS)),
                              count if count > 0 and not live else None, redact(spec), live)

    def read(self) -> np.ndarray | None:
        ok, image = self.capture.read()
        return as_bgr8(image) if ok and image is not None and image.size else None

    def seek(self, index: int) -> None:
        """Make frame ``index`` of a file the next one read (a chunk of a long video).

        OpenCV seeks to the keyframe before and decodes forward (frame-exact on the codecs
        measured); if the backend lands elsewhere, the file is read from its start up to ``index``."""
        if index <= 0:
            return
        if self.capture.set(cv2.CAP_PROP_POS_FRAMES, index) and int(self.capture.get(cv2.CAP_PROP_POS_FRAMES)) == index:
            return
        self.capture.release()
        self.capture = _open_capture(self.spec, self.settings, self._capture_class)
        for _ in range(index):
            if not self.capture.grab():
                break

    def release(self) -> None:
        self.capture.release()


def count_frames(spec: str | os.PathLike) -> int:
    """The frames a file really has, by reading through it (its header may say 0, or 10**9)."""
    capture = _open_capture(os.fspath(spec), CameraSettings())
    frames = 0
    try:
        while capture.grab():
            frames += 1
    finally:
        capture.release()
    return frames


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


def is_camera(spec: str) -> bool:
    return spec.isdigit() or spec.startswith("/dev/video")


def check_source(spec: str) -> None:
    """What can be known about a source without opening it: a file must exist and hold bytes.

    Cheap (no OpenCV call), so the CLI runs it before loading the model."""
    spec = str(spec)
    if is_camera(spec) or "://" in spec or spec == "demo":
        return
    check_input_file(spec, "a video")


def probe_source(spec: str, settings: CameraSettings | None = None) -> None:
    """Before the model loads: a camera exists, a file opens as a video, camera settings go to cameras.

    (A URL is opened later: it may take up to the open timeout to answer.)"""
    spec = str(spec)
    check_source(spec)
    if settings is not None and not settings.empty and not is_camera(spec):
        raise InputError(f"--width, --height, --fps, --fourcc and --backend set a camera's mode; {redact(spec)} "
                         "is not a camera (a file or stream gives the frames it has)")
    if is_camera(spec):
        check_camera_exists(spec)
    elif "://" not in spec and spec != "demo":
        _open_capture(spec, CameraSettings()).release()


def _open_capture(spec: str, settings: CameraSettings,
                  capture_class: Callable[..., Any] = cv2.VideoCapture) -> Any:
    """Open a capture or raise a clear error; never hang longer than OPEN_TIMEOUT_MS. A camera gets
    the mode in ``settings`` (and a note when it chose another)."""
    if is_camera(spec):
        check_camera_exists(spec)
        capture = capture_class(int(spec) if spec.isdigit() else spec, settings.api)
        if not capture.isOpened():
            raise ConnectionError(f"cannot open camera {spec}: is it free (not used by another program)? "
                                  "(try another --source /dev/videoN, a URL or a video file)")
        note = apply_settings(capture, settings, f"camera {spec}")
        if note:
            log.warning("%s", note)
        return capture
    if "://" in spec:
        if spec.lower().startswith(("http://", "https://")):
            probe_http(spec)  # OpenCV would hide what the server said
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, OPEN_TIMEOUT_MS, cv2.CAP_PROP_READ_TIMEOUT_MSEC, OPEN_TIMEOUT_MS]
        capture = capture_class(spec, cv2.CAP_FFMPEG, params)
        if not capture.isOpened():
            raise ConnectionError(f"cannot open stream {redact(spec)}: no answer within {OPEN_TIMEOUT_MS // 1000} s "
                                  "or not a video stream")
        return capture
    check_source(spec)
    capture = capture_class(spec)
    if not capture.isOpened():
        raise InputError(f"{spec}: not a video OpenCV can read (try .mp4, .avi or .mkv)")
    return capture


HTTP_HINTS = {401: "check the user, password or token in the address", 403: "check the user, password or token in the address",
              404: "check the path in the address"}


def probe_http(spec: str) -> None:
    """Ask an http(s) source for its headers, so a refusal is reported as the server said it."""
    parts = urllib.parse.urlsplit(spec)
    headers = {"User-Agent": "stream_cam"}
    if parts.username is not None:  # user:password@ in the address: HTTP basic authentication
        pair = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        hostname = parts.hostname or ""
        host = hostname if ":" not in hostname else f"[{hostname}]"
        netloc = host + (f":{parts.port}" if parts.port else "")
        spec_without_user = urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    else:
        spec_without_user = spec
    request = urllib.request.Request(spec_without_user, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=OPEN_TIMEOUT_MS / 1000):
            pass  # headers only: a stream is not read here
    except urllib.error.HTTPError as exc:
        hint = HTTP_HINTS.get(exc.code, "the server refused the stream")
        raise ConnectionError(f"{redact(spec)}: the server answered {exc.code} {exc.reason}; {hint}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError) or "timed out" in str(reason):
            raise ConnectionError(f"cannot open stream {redact(spec)}: no answer within "
                                  f"{OPEN_TIMEOUT_MS // 1000} s") from None
        raise ConnectionError(f"cannot reach {redact(spec)}: {reason}") from None


def open_reader(spec: str, settings: CameraSettings | None = None) -> CaptureReader:
    """A :class:`Reader` for a camera index, /dev/videoN, URL or file (a camera in the mode asked)."""
    return CaptureReader(str(spec), settings)
