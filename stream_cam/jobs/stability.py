"""How steady a method's heatmaps are over a video: ``evaluate``'s stability report."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from ..sources.readers import open_reader

if TYPE_CHECKING:
    from ..engine.explainer import Explains

CHANGE_BELOW = 0.5  # a heatmap correlating less than this with the previous one is a change of scene or subject
CAUGHT_UP = 0.9  # the smoothed map has caught up once it correlates this much with the unsmoothed one


def video_stability(cam: Explains, videos: Sequence[str], smooth: float, progress: bool = False) -> dict:
    """Over EVERY frame of the videos: the mean and spread of the frame-to-frame correlation of the
    heatmaps without and with ``smooth``, and how many frames the smoothed map lags behind a change
    (the explained class changes, or the unsmoothed map correlates < 0.5 with the previous one),
    until it correlates >= 0.9 with the unsmoothed map again."""
    from ..engine.stream import StreamExplainer
    from ..frames import Frame
    from ..pixels import StabilityMeter, correlation

    from .evaluate import expected_frames
    from .video import progress_bar

    raw_values, smooth_values, lags = [], [], []
    bar = progress_bar(expected_frames(videos, 1), f"stability ({cam.method_name})", progress)
    for spec in videos:
        plain, smoothed = StreamExplainer(cam, smooth=0.0), StreamExplainer(cam, smooth=smooth)
        plain_meter, smooth_meter = StabilityMeter(), StabilityMeter()
        reader = open_reader(spec)
        index, waiting = 0, None  # waiting: frames since a change, while the smoothed map lags
        try:
            while (image := reader.read()) is not None:
                frame = Frame(index, image, 0.0, 0.0)
                a = plain.explain([frame])[0]
                b = smoothed.explain([frame])[0]
                raw = plain_meter.update(index, a.class_index, a.heatmap)
                smoothed_value = smooth_meter.update(index, b.class_index, b.heatmap)
                raw_values += [raw] if raw is not None else []
                smooth_values += [smoothed_value] if smoothed_value is not None else []
                if index > 0 and (raw is None or raw < CHANGE_BELOW):  # another class, or another picture
                    waiting = 0
                if waiting is not None:
                    agreement = correlation(a.heatmap, b.heatmap)
                    if agreement is None or agreement >= CAUGHT_UP:
                        lags.append(waiting)
                        waiting = None
                    else:
                        waiting += 1
                index += 1
                if bar is not None:
                    bar.update(1)
        finally:
            reader.release()
    if bar is not None:
        bar.close()

    def spread(values: list[float]) -> tuple[float | None, float | None]:
        return (round(float(np.mean(values)), 4), round(float(np.std(values)), 4)) if values else (None, None)

    mean, std = spread(raw_values)
    smoothed_mean, smoothed_std = spread(smooth_values)
    return {"mean": mean, "std": std, "smooth": smooth, "smoothed_mean": smoothed_mean, "smoothed_std": smoothed_std,
            "changes": len(lags), "lag_frames": round(float(np.mean(lags)), 2) if lags else None}
