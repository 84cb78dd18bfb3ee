"""Blend a heatmap onto a frame, as the keras.io example's ``save_and_display_gradcam``
does, but with OpenCV: resize the map to the frame, colour it with a 256-entry
table (``cv2.applyColorMap`` with matplotlib's colours), alpha-blend."""

from __future__ import annotations

import cv2
import numpy as np

from ..checks import check_alpha
from ..defaults import ALPHA as DEFAULT_ALPHA
from ..errors import InputError
from ..pixels import finite_heat, to_rgb8
from .colormap import DEFAULT_COLORMAP, colormap_lut



def to_levels(heatmap: np.ndarray) -> np.ndarray:
    """A map in [0, 1] (NaN/inf tolerated) -> uint8 levels 0..255, as the keras.io example's np.uint8(255 * h)."""
    heat = finite_heat(heatmap)
    return np.round(np.clip(heat, 0.0, 1.0) * 255.0).astype(np.uint8)


def colorize(heatmap: np.ndarray, colormap: str = DEFAULT_COLORMAP, bgr: bool = True) -> np.ndarray:
    """A (H, W) map in [0, 1] -> (H, W, 3) uint8 colours, through the colormap's 256-entry table."""
    levels = heatmap if heatmap.dtype == np.uint8 else to_levels(heatmap)
    return cv2.applyColorMap(levels, colormap_lut(colormap, bgr))


def overlay_heatmap(
    frame: np.ndarray,
    heatmap: np.ndarray,
    alpha: float = DEFAULT_ALPHA,
    colormap: str = DEFAULT_COLORMAP,
    *,
    bgr: bool = False,
) -> np.ndarray:
    """Return ``frame`` with ``heatmap`` blended on top, as a uint8 (H, W, 3) frame.

    The heatmap, at any resolution, is resized to the full frame (NaN and inf
    count as 0); ``alpha`` is its weight. The frame is RGB, as ``GradCAM`` takes it and as
    Keras, matplotlib and notebooks use; pass ``bgr=True`` for OpenCV's BGR frames.
    Grayscale, 4-channel, 16-bit and float (0..1) frames are converted to 8-bit colour first.
    """
    frame = np.asarray(frame)
    if frame.ndim not in (2, 3) or 0 in frame.shape:
        raise InputError(f"expected an (H, W) or (H, W, C) frame, got shape {frame.shape}")
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        frame = to_rgb8(frame, "frame")
    alpha = check_alpha(alpha)
    levels = to_levels(heatmap)
    if levels.ndim != 2 or 0 in levels.shape:
        raise InputError(f"a heatmap must be a non-empty 2-D array, got shape {levels.shape}")
    # Quantise the small map, then resize the uint8 levels: 5x cheaper than resizing floats.
    levels = cv2.resize(levels, (frame.shape[1], frame.shape[0]), interpolation=cv2.INTER_LINEAR)
    colors = colorize(levels.reshape(frame.shape[:2]), colormap, bgr)
    return cv2.addWeighted(frame, 1.0 - alpha, colors, alpha, 0.0)
