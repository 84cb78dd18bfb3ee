"""The values that travel down the data path: a captured frame, and what the engine said about it.

Sources make :class:`Frame`; the engine turns it into an :class:`Explanation`; render and
sinks read both. They live here, at the top level, so no part imports another for them.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np


# The engine resolves "the class at rank r" for any r up to this (and the keys 1..MAX_RANK pick one).
MAX_RANK = 5


def score_value(probability: float | None, digits: int = 6) -> float | None:
    """A probability for JSON, a log or a table: rounded, or None when the model gave none or NaN/inf
    (``NaN`` is not JSON; a model that answers NaN keeps every output whole, its scores unavailable)."""
    return None if probability is None or not math.isfinite(probability) else round(float(probability), digits)


def percent(probability: float | None, compact: bool = False) -> str:
    """'72.3%' ('72%' compact), or 'n/a' for a score the model did not give (NaN)."""
    if probability is None or not math.isfinite(probability):
        return "n/a"
    return f"{probability:.0%}" if compact else f"{probability:5.1%}"


def short_label(label: str) -> str:
    """The first synonym: 'tabby, tabby cat' -> 'tabby'."""
    return label.split(",")[0].strip()


@dataclass
class Frame:
    """One BGR frame, its position in the source, and when it was captured."""

    index: int
    image: np.ndarray
    timestamp: float  # seconds in the source's own timeline (index / fps for files)
    captured_at: float  # time.perf_counter() when the reader got it
    prepared: np.ndarray | None = None  # model input, when the reader thread prepared it
    wall: float = field(default_factory=time.time)  # Unix time when the reader got it


@dataclass
class Explanation:
    """What the engine says about one frame."""

    frame: Frame
    heatmap: np.ndarray  # (h, w) float32 in [0, 1], after smoothing
    class_index: int
    top: list[tuple[int, float]]  # (class index, probability), most likely first
    engine_ms: float
    smoothed: bool = False
    method: str = ""  # the CAM method that made the heatmap
    trust: float | None = None  # share of the class's probability left with only the hottest 20% shown
    runtime: str = ""  # what ran the explainer: "tensorflow" or "litert"
    device: str = ""  # where: "cpu" or "gpu:N"
    probability: float | None = None  # the explained class's probability, in the top-k or not

    @property
    def score(self) -> float | None:
        """The explained class's probability (from the top-k when the engine did not give it)."""
        return self.probability if self.probability is not None else dict(self.top).get(self.class_index)

    def top_entries(self, label: Callable[[int], str]) -> list[dict]:
        """The top-k as JSON-ready dicts, for the log and the browser view."""
        return [{"index": c, "label": short_label(label(c)), "score": score_value(p, 4)} for c, p in self.top]
