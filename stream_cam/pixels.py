"""Pixel and heatmap helpers shared by every part: conversions that must mean the same everywhere.

Pure numpy (no OpenCV, no TensorFlow), so sources, render, sinks and the engine can all use them.
"""

from __future__ import annotations

import numpy as np

from .errors import InputError


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
        image = (np.clip(np.nan_to_num(image, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
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


def finite_heat(heatmap: np.ndarray) -> np.ndarray:
    """A heatmap as float32 with NaN and inf counted as 0 (never as heat)."""
    return np.nan_to_num(np.asarray(heatmap, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)


def correlation(a: np.ndarray, b: np.ndarray) -> float | None:
    """Pearson correlation of two maps of the same shape; None when either is flat (undefined)."""
    x, y = finite_heat(a).ravel().astype(np.float64), finite_heat(b).ravel().astype(np.float64)
    if x.shape != y.shape or x.std() == 0 or y.std() == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


class StabilityMeter:
    """How stable a stream's heatmaps are: each NEW heatmap's correlation with the previous one of
    the same class (None after a class change, or for the first). A heatmap shown again on later
    frames keeps the value it got when it was computed."""

    def __init__(self) -> None:
        self._last: tuple[int, int, np.ndarray] | None = None  # (frame it was computed on, class, map)
        self.value: float | None = None

    def update(self, computed_on: int, class_index: int, heatmap: np.ndarray) -> float | None:
        last = self._last
        if last is not None and last[0] == computed_on:
            return self.value
        self.value = correlation(last[2], heatmap) if last is not None and last[1] == class_index else None
        self._last = (computed_on, class_index, heatmap)
        return self.value


def peak_xy(heatmap: np.ndarray, height: int, width: int) -> tuple[int, int]:
    """The heatmap's maximum in (x, y) pixels of a (height, width) image."""
    heat = finite_heat(heatmap)
    row, col = np.unravel_index(int(np.argmax(heat)), heat.shape)
    x = (col + 0.5) * width / heat.shape[1]
    y = (row + 0.5) * height / heat.shape[0]
    return min(int(x), width - 1), min(int(y), height - 1)
