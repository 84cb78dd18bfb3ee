"""What every streaming command shares: how to explain, draw, record, log and serve."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..web.server import Address


@dataclass
class StreamOptions:
    smooth: float = 0.0  # heatmap smoothing across frames, 0 = off
    alpha: float = 0.4
    colormap: str = "jet"
    top_k: int = 5
    classes: Sequence[int] = ()  # fixed classes to explain (cycled); empty = by rank
    codec: str = "mp4v"
    overwrite: bool = False
    log: Path | None = None  # one JSON line per frame
    serve: Address | None = None  # the browser view
    token: str | None = None
