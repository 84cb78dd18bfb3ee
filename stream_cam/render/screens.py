"""Kiosk extras: the colour legend, and the idle / reconnecting screen."""

from __future__ import annotations

import cv2
import numpy as np

from .colormap import colormap_lut
from .draw import FONT, WHITE, YELLOW, panel, put_text, unit

HOT_WORD = {"jet": "red", "turbo": "red", "inferno": "yellow", "magma": "light", "viridis": "yellow",
            "coolwarm": "red"}


def legend_text(colormap: str, label: str) -> str:
    hot = HOT_WORD.get(colormap, "the right end of the bar")
    return f"{hot} = where the model looked for {label}" if label else f"{hot} = where the model looked"


def draw_legend(frame: np.ndarray, colormap: str, label: str, scale: float = 1.0) -> np.ndarray:
    """A colour bar with 'low' and 'high' and one line saying what the colours mean (bottom right)."""
    u = unit(frame, scale)
    size, thick = 0.62 * u, max(1, round(1.4 * u))
    text = legend_text(colormap, label)
    (text_w, text_h), _ = cv2.getTextSize(text, FONT, size, thick)
    bar_w, bar_h, pad = max(int(260 * u), text_w), int(16 * u), int(12 * u)
    h, w = frame.shape[:2]
    x1, y1 = w - pad, h - int(60 * u)
    x0, y0 = max(x1 - bar_w, pad), y1 - bar_h - text_h - int(40 * u)
    panel(frame, x0 - pad, y0 - pad, x1 + pad, y1 + pad, 0.6)
    ramp = np.linspace(0, 255, max(x1 - x0, 1)).astype(np.uint8)[None, :]
    colors = cv2.applyColorMap(np.repeat(ramp, bar_h, axis=0), colormap_lut(colormap))
    frame[y1 - bar_h:y1, x0:x0 + colors.shape[1]] = colors
    put_text(frame, "low", (x0, y1 - bar_h - int(6 * u)), size * 0.85, WHITE, thick)
    (high_w, _), _ = cv2.getTextSize("high", FONT, size * 0.85, thick)
    put_text(frame, "high", (x1 - high_w, y1 - bar_h - int(6 * u)), size * 0.85, WHITE, thick)
    put_text(frame, text, (x0, y0 + text_h), size, WHITE, thick)
    return frame


def idle_screen(width: int, height: int, title: str, detail: str, colormap: str, label: str = "",
                scale: float = 1.0) -> np.ndarray:
    """A dark screen with a big message (e.g. 'reconnecting...') and the legend."""
    frame = np.full((height, width, 3), 24, np.uint8)
    u = unit(frame, scale)
    size, thick = 1.3 * u, max(2, round(2.5 * u))
    (tw, th), _ = cv2.getTextSize(title, FONT, size, thick)
    put_text(frame, title, ((width - tw) // 2, height // 2 - th), size, YELLOW, thick)
    small = 0.65 * u
    (dw, _), _ = cv2.getTextSize(detail, FONT, small, max(1, round(1.4 * u)))
    put_text(frame, detail, (max((width - dw) // 2, 4), height // 2 + int(30 * u)), small, WHITE, max(1, round(1.4 * u)))
    return draw_legend(frame, colormap, label, scale)
