"""Cameras: which ones this machine has, and the mode (size, rate, pixel format) a user asks of one.

On Linux the cameras are the ``/dev/videoN`` devices, named from sysfs; ``v4l2-ctl`` (when
installed) tells their formats. Elsewhere the indices that open are the list.

A mode is applied in the order V4L2 needs: the pixel format (FOURCC) first, then the size, then
the rate (many USB webcams give 1080p at 5 fps unless MJPG is asked for). It is read back after,
and a camera that chose another mode is said out loud.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2

from ..errors import InputError

log = logging.getLogger(__name__)

BACKENDS = {"v4l2": cv2.CAP_V4L2, "ffmpeg": cv2.CAP_FFMPEG, "gstreamer": cv2.CAP_GSTREAMER,
            "dshow": cv2.CAP_DSHOW, "msmf": cv2.CAP_MSMF, "avfoundation": cv2.CAP_AVFOUNDATION}
PROBED_INDICES = 5  # where there is no /dev: the indices tried


@dataclass(frozen=True)
class CameraSettings:
    """What a user asks of a camera; None = the camera's own choice."""

    width: int | None = None
    height: int | None = None
    fps: float | None = None
    fourcc: str | None = None
    backend: str | None = None

    def __post_init__(self) -> None:
        for name in ("width", "height"):
            value = getattr(self, name)
            if value is not None and not 16 <= value <= 16384:
                raise InputError(f"--{name} must be from 16 to 16384 pixels, got {value}")
        if self.fps is not None and not 0.5 <= self.fps <= 1000:
            raise InputError(f"--fps must be from 0.5 to 1000, got {self.fps}")
        if self.fourcc is not None and not re.fullmatch(r"[A-Za-z0-9 ]{4}", self.fourcc):
            raise InputError(f"--fourcc must be 4 letters or digits, such as MJPG or YUYV, got {self.fourcc[:20]!r}")
        if self.backend is not None and self.backend not in BACKENDS:
            raise InputError(f"--backend must be one of {', '.join(BACKENDS)}, got {self.backend[:20]!r}")

    @property
    def empty(self) -> bool:
        return all(value is None for value in asdict(self).values())

    @property
    def api(self) -> int:
        return BACKENDS[self.backend] if self.backend else cv2.CAP_ANY

    def describe(self, width: float | None, height: float | None, fps: float | None) -> str:
        size = f"{int(width or 0)}x{int(height or 0)}"
        return size + (f" at {fps:g} fps" if fps else "")


def _fourcc_text(code: float) -> str:
    number = int(code)
    return "".join(chr((number >> 8 * i) & 0xFF) for i in range(4)) if number > 0 else ""


def apply_settings(capture: Any, settings: CameraSettings, name: str) -> str:
    """Ask ``capture`` for the mode (FOURCC, then size, then rate), read it back; returns a note when the
    camera chose something else ('' when it gives what was asked, or nothing was asked)."""
    if settings.empty:
        return ""
    if settings.fourcc:
        capture.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*settings.fourcc.upper()))
    if settings.width:
        capture.set(cv2.CAP_PROP_FRAME_WIDTH, settings.width)
    if settings.height:
        capture.set(cv2.CAP_PROP_FRAME_HEIGHT, settings.height)
    if settings.fps:
        capture.set(cv2.CAP_PROP_FPS, settings.fps)
    width, height = capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT)
    fps, fourcc = capture.get(cv2.CAP_PROP_FPS), _fourcc_text(capture.get(cv2.CAP_PROP_FOURCC))
    differs = ((settings.width and int(width) != settings.width) or (settings.height and int(height) != settings.height)
               or (settings.fps and abs(fps - settings.fps) > 0.5)
               or (settings.fourcc and fourcc and fourcc.upper() != settings.fourcc.upper()))
    if not differs:
        return ""
    asked = settings.describe(settings.width or width, settings.height or height, settings.fps or None)
    gives = settings.describe(width, height, fps or None)
    formats = f" ({settings.fourcc.upper()} asked, {fourcc or 'unknown'} given)" if settings.fourcc else ""
    return f"{name}: asked {asked}, the camera gives {gives}{formats}"


@dataclass
class Camera:
    """A camera found on this machine."""

    index: int
    path: str  # /dev/videoN, or the index where there is no /dev
    name: str = ""
    formats: list[str] = field(default_factory=list)  # e.g. "MJPG 1280x720 30fps", when known

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _v4l2_formats(path: str) -> list[str]:
    """What ``v4l2-ctl --list-formats-ext`` says the device offers (empty without v4l2-ctl)."""
    if shutil.which("v4l2-ctl") is None:
        return []
    try:
        text = subprocess.run(["v4l2-ctl", "-d", path, "--list-formats-ext"], capture_output=True, text=True,
                              timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    formats, fourcc, size = [], "", ""
    for line in text.splitlines():
        if match := re.search(r"'(\w{3,4})'", line):
            fourcc = match.group(1)
        elif match := re.search(r"Size: \w+ (\d+x\d+)", line):
            size = match.group(1)
        elif (match := re.search(r"\(([\d.]+) fps\)", line)) and fourcc and size:
            formats.append(f"{fourcc} {size} {float(match.group(1)):g}fps")
    return formats


def list_cameras(dev: Path = Path("/dev"), sysfs: Path = Path("/sys/class/video4linux")) -> list[Camera]:
    """The cameras here; an empty list is a normal answer."""
    if sys.platform.startswith("linux"):
        cameras = []
        for device in sorted(dev.glob("video*"), key=lambda p: int(p.name[5:]) if p.name[5:].isdigit() else 1 << 30):
            if not device.name[5:].isdigit():
                continue
            name_file = sysfs / device.name / "name"
            name = name_file.read_text(errors="replace").strip() if name_file.is_file() else ""
            cameras.append(Camera(int(device.name[5:]), str(device), name, _v4l2_formats(str(device))))
        return cameras
    found = []
    for index in range(PROBED_INDICES):
        capture = cv2.VideoCapture(index)
        try:
            if capture.isOpened():
                found.append(Camera(index, str(index)))
        finally:
            capture.release()
    return found


def cameras_here(dev: Path = Path("/dev")) -> str:
    """'cameras here: /dev/video0 (HD Webcam), /dev/video2' or 'no camera found here'."""
    cameras = list_cameras(dev) if sys.platform.startswith("linux") else []
    if not cameras:
        return "no camera found here (run 'stream-cam cameras')"
    return "cameras here: " + ", ".join(c.path + (f" ({c.name})" if c.name else "") for c in cameras)


def check_camera_exists(spec: str, dev: Path = Path("/dev")) -> None:
    """On Linux, camera N is /dev/videoN: refuse one that does not exist, naming those that do."""
    if not sys.platform.startswith("linux"):
        return
    path = dev / f"video{spec}" if spec.isdigit() else Path(spec)
    if not path.exists():
        what = f"camera {spec}" if spec.isdigit() else spec
        raise InputError(f"{what} does not exist (no {path}); {cameras_here(dev)}")
