"""Does a method beat the random map? A verdict from paired bootstrap intervals, not two means.

For each frame, the method's score minus the random baseline's on the SAME frame and class (the
baseline is the mean of several seeded random maps). The 95% interval of the mean difference comes
from a seeded bootstrap over frames. A method "beats random" when deletion's interval lies below
0 and insertion's above 0, is "worse than random" in the opposite case, and is "inconclusive"
otherwise, or when there are too few frames for an interval to mean anything.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

RESAMPLES = 2000
LEVEL = 0.95
MIN_FRAMES = 5  # below this a bootstrap interval is not worth reporting as a verdict
BEATS, WORSE, INCONCLUSIVE = "beats random", "worse than random", "inconclusive"


def paired_interval(differences: Sequence[float], resamples: int = RESAMPLES, seed: int = 0,
                    level: float = LEVEL) -> tuple[float, float]:
    """The ``level`` percentile-bootstrap interval of the mean of ``differences`` (seeded)."""
    values = np.asarray(differences, np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"differences must be a non-empty 1-D sequence, got shape {values.shape}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), not {level}")
    picks = np.random.default_rng(seed).integers(0, values.size, (resamples, values.size))
    means = values[picks].mean(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def verdict(deletion: tuple[float, float], insertion: tuple[float, float], frames: int) -> str:
    """From the intervals of (method - random) for deletion AUC (lower is better) and insertion AUC."""
    if frames < MIN_FRAMES:
        return INCONCLUSIVE
    if deletion[1] < 0 and insertion[0] > 0:
        return BEATS
    if deletion[0] > 0 and insertion[1] < 0:
        return WORSE
    return INCONCLUSIVE


def frames_needed(differences: Sequence[float], z: float = 1.96) -> int | None:
    """About how many frames would make the interval of ``differences`` exclude 0, if the mean and
    spread seen so far hold (None: no difference seen, more frames would not show one)."""
    values = np.asarray(differences, np.float64)
    mean, spread = abs(float(values.mean())), float(values.std(ddof=1)) if values.size > 1 else 0.0
    if not mean >= 1e-9 or not math.isfinite(spread):  # none seen, or NaN scores (a model answering NaN)
        return None
    return max(MIN_FRAMES, math.ceil((z * spread / mean) ** 2))
