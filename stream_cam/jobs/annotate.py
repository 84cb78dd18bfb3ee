"""The one step from an explanation to what is shown, for every runner: live (each shown frame,
with the newest heatmap moved to it), video files and the Ray workers (each frame with its own).

:class:`Look` is how the picture is drawn (alpha, colormap, HUD, key help, legend);
:func:`draw` fills the HUD from the explanation and draws heatmap, HUD and legend;
:func:`view_state` is what the browser page shows for the same frame."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .. import defaults
from ..frames import Explanation
from ..render.frame import render_frame
from ..render.hud import HudState
from ..render.screens import draw_legend
from ..web.state import ViewState


@dataclass
class Look:
    alpha: float = defaults.ALPHA
    colormap: str = defaults.COLORMAP
    hud: bool = True
    keys: bool = False  # the key help (live)
    hud_scale: float = 1.0
    legend: bool = False  # the colour legend (kiosk)


def draw(image: np.ndarray, explanation: Explanation, heatmap: np.ndarray, hud: HudState, look: Look,
         label: Callable[[int], str]) -> np.ndarray:
    """A new BGR picture: ``image`` with ``heatmap`` blended on, the HUD saying what was explained."""
    hud.set_classes(explanation.top, explanation.class_index, label)
    hud.method = explanation.method
    shown = render_frame(image, heatmap, look.alpha, look.colormap, hud if look.hud else None, look.keys,
                         look.hud_scale)
    if look.legend and look.hud:
        draw_legend(shown, look.colormap, hud.explained_label, look.hud_scale)
    return shown


def view_state(explanation: Explanation, frame: int, hud: HudState, look: Look, label: Callable[[int], str],
               **live: Any) -> ViewState:
    """What the page shows for ``frame``, drawn with ``explanation``; ``live``: the live run's extras
    (fps, latency, paused, recording, status, choice, stream, heatmap_frame, methods)."""
    score = explanation.score
    return ViewState(frame=frame, top=explanation.top_entries(label),
                     explained={"index": explanation.class_index, "label": hud.explained_label,
                                "score": None if score is None else round(score, 4)},
                     alpha=look.alpha, colormap=look.colormap, source=hud.source, method=explanation.method, **live)
