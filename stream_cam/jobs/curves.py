"""The curves behind ``stream-cam evaluate``'s scores, drawn with matplotlib."""

from __future__ import annotations

import io
from typing import Callable

import numpy as np

from ..engine.faithfulness import Faithfulness
from ..engine.road import FRACTIONS
from ..sinks.files import write_bytes_atomic
from .evaluate import BASELINES, EvaluateOptions, MethodScores


def plot_curves(results: dict[str, MethodScores], options: EvaluateOptions) -> None:
    """Mean deletion and insertion curves of every method side by side (and ROAD's below them), written atomically."""
    if options.plot is None:
        return
    plot = options.plot
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    # Deletion and insertion; with ROAD, its two curves in a second row
    steps = np.linspace(0, 1, options.steps + 1)
    panels: list[tuple[str, str, np.ndarray, Callable[[Faithfulness], np.ndarray]]] = [
        ("deletion (lower is better)", "fraction of pixels, hottest first", steps, lambda f: f.deletion),
        ("insertion (higher is better)", "fraction of pixels, hottest first", steps, lambda f: f.insertion)]
    if options.road:
        panels += [("ROAD MoRF (lower is better)", "fraction imputed, most relevant first", np.array(FRACTIONS),
                    lambda f: f.road_curves().morf),
                   ("ROAD LeRF (higher is better)", "fraction imputed, least relevant first", np.array(FRACTIONS),
                    lambda f: f.road_curves().lerf)]
    figure, axes = pyplot.subplots(len(panels) // 2, 2, figsize=(10, 4 * len(panels) // 2), dpi=100, squeeze=False)
    for axis, (title, xlabel, xs, curve) in zip(axes.ravel(), panels):
        for name, scores in results.items():
            every = [f for draws in scores.frames for f in draws]
            axis.plot(xs, np.mean([curve(f) for f in every], axis=0), "--" if name in BASELINES else "-",
                      label=name)
        axis.set_title(title)
        axis.set_xlabel(xlabel)
        axis.set_ylabel("class probability")
        axis.set_ylim(0, 1)
        axis.grid(alpha=0.3)
    axes[0, 1].legend(fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format=plot.suffix.lower().lstrip("."))
    pyplot.close(figure)
    options.written["plot"] = write_bytes_atomic(plot, buffer.getvalue(), options.overwrite, elsewhere=True)
