"""Compose what the viewer sees: heatmap overlay, then the HUD, on the full-resolution frame."""

from __future__ import annotations

import numpy as np

from .hud import HudState, draw_hud, draw_keys_help, panel_bottom
from .overlay import overlay_heatmap


def render_frame(image: np.ndarray, heatmap: np.ndarray, alpha: float, colormap: str,
                 hud: HudState | None, hud_scale: float = 1.0) -> np.ndarray:
    """A new BGR frame: ``image`` with the heatmap blended on, and the HUD if given."""
    return decorate(overlay_heatmap(image, heatmap, alpha, colormap, bgr=True), hud, hud_scale)


def decorate(blended: np.ndarray, hud: HudState | None, hud_scale: float = 1.0, operator: bool = False,
             show_keys: bool = False) -> np.ndarray:
    """The HUD drawn on an already blended frame (in place; returned). ``operator``: the window's
    picture, with what only its viewer needs (REC, passing messages, the key list ``show_keys``);
    otherwise the picture that is recorded, saved and served."""
    if hud is not None:
        draw_hud(blended, hud, hud_scale, operator)
    if operator and show_keys:
        draw_keys_help(blended, hud_scale, panel_bottom(blended, hud, hud_scale) if hud is not None else 0)
    return blended
