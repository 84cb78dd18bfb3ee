"""Read still images as uint8 RGB, including the built-in scikit-image photos.

``skimage:NAME`` names a photo that ships inside scikit-image (``skimage:chelsea``,
``skimage:coffee``...), so the tool has real input with no files and no network.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from ..errors import InputError
from ..pixels import to_rgb8
from .paths import check_input_file

BUILTIN_PREFIX = "skimage:"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
BUILTIN_IMAGES = ("chelsea", "coffee", "rocket", "astronaut", "stereo_motorcycle", "camera", "cat")
# Refuse images above this many pixels before decoding them (a 20000x20000 PNG
# would need 1.2 GB as RGB). 100 megapixels covers every real camera.
MAX_PIXELS = 100_000_000
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_END, PNG_TAIL = b"IEND", 4096  # a whole PNG ends with its IEND chunk (some tools add a little after it)


def builtin_image(name: str) -> np.ndarray:
    """A scikit-image sample photo as uint8 RGB."""
    import skimage.data

    if name not in BUILTIN_IMAGES:
        raise InputError(f"unknown built-in image {name!r}; choose one of: {', '.join(BUILTIN_IMAGES)}")
    image = getattr(skimage.data, name)()
    if isinstance(image, tuple):  # stereo_motorcycle returns (left, right, disparity)
        image = image[0]
    return to_rgb8(np.asarray(image), name)


def _check_pixels(path: Path) -> None:
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None  # we apply our own limit below
    try:
        with Image.open(path) as probe:
            width, height = probe.size
    except (OSError, ValueError):
        return  # not something PIL can size; OpenCV decides below
    if width * height > MAX_PIXELS:
        raise InputError(
            f"{path}: {width}x{height} is larger than the {MAX_PIXELS // 1_000_000} megapixel limit; "
            "downscale it first"
        )


def check_image_spec(spec: str | Path) -> None:
    """What can be known without decoding: a built-in name exists; a file exists, is not a folder,
    and is not larger than the pixel limit (read from its header)."""
    text = str(spec)
    if text.startswith(BUILTIN_PREFIX):
        name = text[len(BUILTIN_PREFIX):]
        if name not in BUILTIN_IMAGES:
            raise InputError(f"unknown built-in image {name!r}; choose one of: {', '.join(BUILTIN_IMAGES)}")
        return
    path = check_input_file(text, "an image")
    _check_pixels(path)
    if not cv2.haveImageReader(str(path)):  # reads the file's signature, not its pixels
        raise InputError(f"{path}: not an image OpenCV can read (try PNG or JPEG)")


def read_image(spec: str | Path) -> np.ndarray:
    """Read a file path or ``skimage:NAME`` as a uint8 RGB array."""
    text = str(spec)
    check_image_spec(text)
    if text.startswith(BUILTIN_PREFIX):
        return builtin_image(text[len(BUILTIN_PREFIX):])
    path = Path(text)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from exc
    if not data:
        raise InputError(f"{path}: the file is empty")
    if data.startswith(PNG_SIGNATURE) and PNG_END not in data[-PNG_TAIL:]:
        # libpng would print its own line on stderr before failing: refuse a cut-off PNG first
        raise InputError(f"{path}: not an image OpenCV can read (the PNG file is cut short)")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        raise InputError(f"{path}: not an image OpenCV can read (try PNG or JPEG)")
    return apply_orientation(to_rgb8(image, str(path), bgr=True), exif_orientation(path))


# EXIF orientation (tag 0x0112) -> how to turn the stored pixels upright, as phones and viewers do.
_UPRIGHT = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1, :],
    5: lambda a: np.swapaxes(a, 0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: np.swapaxes(a[::-1, ::-1], 0, 1),
    8: lambda a: np.rot90(a, 1),
}


def exif_orientation(path: Path) -> int:
    """The file's EXIF orientation (1 = upright, also when there is none)."""
    from PIL import Image

    try:
        with Image.open(path) as probe:
            return int(probe.getexif().get(0x0112, 1))
    except (OSError, ValueError, TypeError):
        return 1


def apply_orientation(image: np.ndarray, orientation: int) -> np.ndarray:
    """Turn decoded pixels upright for an EXIF orientation 1..8."""
    turn = _UPRIGHT.get(orientation)
    return image if turn is None else np.ascontiguousarray(turn(image))


def expand_folders(specs: Sequence[str]) -> list[str]:
    """Each folder among ``specs`` replaced by the pictures in it (sorted by name; not its sub-folders)."""
    expanded = []
    for spec in specs:
        folder = Path(str(spec))
        if str(spec).startswith(BUILTIN_PREFIX) or not folder.is_dir():
            expanded.append(str(spec))
            continue
        pictures = sorted(str(p) for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not pictures:
            raise InputError(f"{folder}: no pictures in this folder ({', '.join(IMAGE_SUFFIXES)})")
        expanded += pictures
    return expanded


def display_name(spec: str | Path) -> str:
    """A short name for outputs: the file stem, or the built-in photo's name."""
    text = str(spec)
    return text[len(BUILTIN_PREFIX):] if text.startswith(BUILTIN_PREFIX) else Path(text).stem
