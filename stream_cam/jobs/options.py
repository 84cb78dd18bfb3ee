"""What every streaming command shares, and the ONE place its values are checked.

``validate()`` needs no model and no TensorFlow: the CLI calls it before loading
anything, and the jobs call the same method when used from Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from .. import defaults
from ..checks import check_alpha, check_count, check_smooth
from ..errors import InputError
from ..render.colormap import colormap_lut
from ..sinks.files import check_output_path
from ..web.address import Address, check_token

MAX_TOP_K = 1000
DEFAULT_TOP_K = 5


def check_render_values(alpha: float, colormap: str, top_k: int) -> None:
    """What every command draws with: the heatmap's weight, its colormap, how many classes to list."""
    check_alpha(alpha, "--alpha")
    colormap_lut(colormap)
    check_count(top_k, MAX_TOP_K, "--top-k")


@dataclass
class StreamOptions:
    smooth: float = 0.0  # heatmap smoothing across frames, 0 = off
    alpha: float = defaults.ALPHA
    colormap: str = defaults.COLORMAP
    top_k: int = DEFAULT_TOP_K
    classes: Sequence[int] = ()  # fixed classes to explain (cycled); empty = by rank
    codec: str = "mp4v"
    overwrite: bool = False
    log: Path | None = None  # one JSON line per frame
    serve: Address | None = None  # the browser view
    token: str | None = None
    allow_hosts: Sequence[str] = ()  # host names the browser view answers to, beyond localhost and IPs
    render: str = defaults.RENDER  # host | device | auto: where the heatmap is resized, coloured and blended

    def validate(self) -> None:
        """Raise InputError/OutputError for any value that cannot work, before any work starts."""
        check_smooth(self.smooth, "--smooth")
        check_render_values(self.alpha, self.colormap, self.top_k)
        if self.log is not None:
            check_output_path(self.log, self.overwrite)
        if self.serve is not None:
            check_token(self.serve, self.token)
        elif self.token:
            raise InputError("--token goes with --serve")
