"""Several streams in one window: a grid of tiles, the selected one outlined."""

from __future__ import annotations

import math
from typing import Sequence

import cv2
import numpy as np

from .draw import YELLOW

MAX_MOSAIC = (1920, 1080)  # (width, height) the whole grid fits in


def grid_shape(count: int) -> tuple[int, int]:
    """(columns, rows) for ``count`` tiles: as square as possible, wider than tall."""
    columns = math.ceil(math.sqrt(count))
    return columns, math.ceil(count / columns)


def mosaic(tiles: Sequence[np.ndarray], selected: int = 0, tile_size: tuple[int, int] | None = None) -> np.ndarray:
    """One BGR picture of every tile (resized to the first tile's size, or ``tile_size``)."""
    if len(tiles) == 1:
        return tiles[0]
    columns, rows = grid_shape(len(tiles))
    width, height = tile_size or (tiles[0].shape[1], tiles[0].shape[0])
    scale = min(1.0, MAX_MOSAIC[0] / (width * columns), MAX_MOSAIC[1] / (height * rows))
    width, height = max(int(width * scale), 2), max(int(height * scale), 2)
    out = np.zeros((height * rows, width * columns, 3), np.uint8)
    for i, tile in enumerate(tiles):
        row, column = divmod(i, columns)
        y, x = row * height, column * width
        out[y:y + height, x:x + width] = cv2.resize(tile, (width, height), interpolation=cv2.INTER_AREA)
        if i == selected:
            cv2.rectangle(out, (x + 1, y + 1), (x + width - 2, y + height - 2), YELLOW, 3)
    return out
