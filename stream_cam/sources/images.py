"""Read still images as uint8 RGB, including the built-in scikit-image photos.

``skimage:NAME`` names a photo that ships inside scikit-image (``skimage:chelsea``,
``skimage:coffee``...), so the tool has real input with no files and no network.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError

BUILTIN_PREFIX = "skimage:"
BUILTIN_IMAGES = ("chelsea", "coffee", "rocket", "astronaut", "stereo_motorcycle", "camera", "cat")
# Refuse images above this many pixels before decoding them (a 20000x20000 PNG
# would need 1.2 GB as RGB). 100 megapixels covers every real camera.
MAX_PIXELS = 100_000_000


def builtin_image(name: str) -> np.ndarray:
    """A scikit-image sample photo as uint8 RGB."""
    import skimage.data

    if name not in BUILTIN_IMAGES:
        raise InputError(f"unknown built-in image {name!r}; choose one of: {', '.join(BUILTIN_IMAGES)}")
    image = getattr(skimage.data, name)()
    if isinstance(image, tuple):  # stereo_motorcycle returns (left, right, disparity)
        image = image[0]
    return to_rgb8(np.asarray(image), name)


def to_rgb8(image: np.ndarray, what: str, bgr: bool = False) -> np.ndarray:
    """Any decoded image (gray, gray+alpha, 3 or 4 channels; 8/16-bit, bool or float in 0..1)
    -> 3-channel uint8. ``bgr=True`` also swaps the first and third channels."""
    image = np.asarray(image)
    if image.dtype == np.uint8:
        pass
    elif image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype == np.bool_:
        image = image.astype(np.uint8) * 255
    elif np.issubdtype(image.dtype, np.floating):
        image = np.uint8(np.clip(np.nan_to_num(image, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0) * 255.0 + 0.5)
    elif np.issubdtype(image.dtype, np.integer):
        image = np.clip(image, 0, 255).astype(np.uint8)
    else:
        raise InputError(f"{what}: unsupported pixel type {image.dtype}")
    if image.size == 0:
        raise InputError(f"{what}: the image is empty")
    if image.ndim == 2:
        image = image[..., None]
    channels = image.shape[2] if image.ndim == 3 else 0
    if channels in (1, 2):
        return np.ascontiguousarray(np.repeat(image[..., :1], 3, axis=2))
    if channels in (3, 4):
        rgb = image[..., :3]
        return np.ascontiguousarray(rgb[..., ::-1] if bgr else rgb)
    raise InputError(f"{what}: unsupported image shape {image.shape}")


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


def read_image(spec: str | Path) -> np.ndarray:
    """Read a file path or ``skimage:NAME`` as a uint8 RGB array."""
    text = str(spec)
    if text.startswith(BUILTIN_PREFIX):
        return builtin_image(text[len(BUILTIN_PREFIX):])
    path = Path(text)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not an image")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from exc
    if not data:
        raise InputError(f"{path}: the file is empty")
    _check_pixels(path)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        raise InputError(f"{path}: not an image OpenCV can read (try PNG or JPEG)")
    return to_rgb8(image, str(path), bgr=True)


def display_name(spec: str | Path) -> str:
    """A short name for outputs: the file stem, or the built-in photo's name."""
    text = str(spec)
    return text[len(BUILTIN_PREFIX):] if text.startswith(BUILTIN_PREFIX) else Path(text).stem
