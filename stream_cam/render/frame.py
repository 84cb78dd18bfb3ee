"""Compose what the viewer sees: heatmap overlay, then the HUD, on the full-resolution frame."""

from __future__ import annotations

import numpy as np

from .hud import HudState, draw_hud, draw_keys_help
from .overlay import overlay_heatmap


def render_frame(image: np.ndarray, heatmap: np.ndarray, alpha: float, colormap: str,
                 hud: HudState | None, show_keys: bool = False, hud_scale: float = 1.0) -> np.ndarray:
    """A new BGR frame: ``image`` with the heatmap blended on, and the HUD if given."""
    return decorate(overlay_heatmap(image, heatmap, alpha, colormap, bgr=True), hud, show_keys, hud_scale)


def decorate(blended: np.ndarray, hud: HudState | None, show_keys: bool = False, hud_scale: float = 1.0) -> np.ndarray:
    """The HUD and the key help drawn on an already blended frame (in place; returned)."""
    if hud is not None:
        draw_hud(blended, hud, hud_scale)
    if show_keys:
        draw_keys_help(blended, hud_scale)
    return blended
