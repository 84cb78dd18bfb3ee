"""Matplotlib colormaps as 256-entry lookup tables for ``cv2.LUT``.

``cv2.applyColorMap(COLORMAP_JET)`` is not matplotlib's jet (the tables differ by
up to 34 levels), so the table is taken from matplotlib itself, once per name.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..defaults import COLORMAP as DEFAULT_COLORMAP
from ..errors import InputError

MAX_NAME = 64  # longer than any colormap's name: refused before the did-you-mean search


def colormap_names() -> list[str]:
    from matplotlib import colormaps

    return sorted(colormaps)


def colormap_lut(name: str = DEFAULT_COLORMAP, bgr: bool = True) -> np.ndarray:
    """A ``(256, 1, 3)`` uint8 table: heat level -> colour, BGR for OpenCV frames by default."""
    if not isinstance(name, str) or len(name) > MAX_NAME:
        raise InputError(f"unknown colormap {str(name)[:MAX_NAME]!r}...; see matplotlib's colormap list")
    return _lut(name, bgr)


@lru_cache(maxsize=32)
def _lut(name: str, bgr: bool) -> np.ndarray:
    from matplotlib import colormaps

    try:
        cmap = colormaps[name]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(name, colormap_names(), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see matplotlib's colormap list"
        raise InputError(f"unknown colormap {name!r}{hint}") from None
    rgb = np.round(cmap(np.arange(256))[:, :3] * 255).astype(np.uint8)
    table = rgb[:, ::-1] if bgr else rgb
    return np.ascontiguousarray(table.reshape(256, 1, 3))
