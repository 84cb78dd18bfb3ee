"""``stream-cam evaluate``: how faithful is each method's heatmap, on your images and videos?

For every input frame and every method: the map of the top class, its deletion and insertion
curves, and the image multiplied by the map (see :mod:`stream_cam.engine.faithfulness`). Two
baselines that know nothing, a random map and a centred Gaussian, are scored on the same
frames and classes. A method that does not beat the random map is reported as such.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence, TextIO, cast

import cv2
import numpy as np

from ..checks import check_count
from ..engine.faithfulness import DEFAULT_STEPS, Faithfulness, center_map, random_map, score_map
from ..errors import InputError
from ..sinks.files import check_output_path, write_bytes_atomic
from ..sources.images import BUILTIN_PREFIX, check_image_spec, read_image
from ..sources.readers import check_source, open_reader

if TYPE_CHECKING:
    from ..engine.explainer import Explains
    from ..engine.gradcam import CAM

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov")
BASELINES = ("random", "center")
MAX_STEPS = 1000
MAX_EVERY = 100_000
DEFAULT_EVERY = 30


@dataclass
class EvaluateOptions:
    steps: int = DEFAULT_STEPS
    every: int = DEFAULT_EVERY  # a video: every Nth frame
    as_json: bool = False
    plot: Path | None = None
    overwrite: bool = False
    smooth: float = 0.5  # videos: stability is reported without and with this smoothing
    progress: bool = True  # a bar of frames scored, on stderr

    def validate(self) -> None:
        check_count(self.steps, MAX_STEPS, "--steps")
        check_count(self.every, MAX_EVERY, "--every")
        if self.plot is not None:
            if self.plot.suffix.lower() not in (".png", ".svg", ".pdf"):
                raise InputError(f"--plot {self.plot}: use a .png, .svg or .pdf file")
            check_output_path(self.plot, self.overwrite)


@dataclass
class MethodScores:
    """Every frame's scores for one method (or baseline)."""

    method: str
    scores: list[Faithfulness] = field(default_factory=list)

    def summary(self) -> dict:
        deletion = float(np.mean([s.deletion_auc for s in self.scores]))
        insertion = float(np.mean([s.insertion_auc for s in self.scores]))
        return {
            "method": self.method, "frames": len(self.scores),
            "deletion_auc": round(deletion, 4), "insertion_auc": round(insertion, 4),
            "average_drop": round(100 * float(np.mean([s.drop for s in self.scores])), 2),
            "increase_in_confidence": round(100 * float(np.mean([s.increase for s in self.scores])), 2),
        }


def check_inputs(paths: Sequence[str]) -> None:
    """Every input exists (files, folders, skimage:NAME) before any model loads."""
    for spec in paths:
        text = str(spec)
        if text.startswith(BUILTIN_PREFIX) or Path(text).suffix.lower() in IMAGE_SUFFIXES:
            check_image_spec(text)
        elif Path(text).is_dir():
            if not any(_folder_files(Path(text))):
                raise InputError(f"{text}: no images or videos in this folder")
        else:
            check_source(text)


def _folder_files(folder: Path) -> Iterator[Path]:
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES:
            yield path


def frames_of(paths: Sequence[str], every: int) -> Iterator[tuple[str, np.ndarray]]:
    """(name, uint8 RGB) for every image, and every ``every``-th frame of every video."""
    for spec in paths:
        text = str(spec)
        if Path(text).is_dir():
            yield from frames_of([str(p) for p in _folder_files(Path(text))], every)
        elif text.startswith(BUILTIN_PREFIX) or Path(text).suffix.lower() in IMAGE_SUFFIXES:
            yield text, read_image(text)
        else:
            reader = open_reader(text)
            try:
                index = 0
                while (image := reader.read()) is not None:
                    if index % every == 0:
                        yield f"{text}#{index}", cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
                    index += 1
            finally:
                reader.release()


def evaluate(cams: dict[str, Explains], paths: Sequence[str], options: EvaluateOptions,
             scorer: CAM | None = None) -> list[dict]:
    """Score every method and both baselines on every frame; returns one summary per method.

    ``scorer``: the TensorFlow engine whose model scores the masked images (default: the first
    method's; give it when the methods run on LiteRT)."""
    options.validate()
    results = {name: MethodScores(name) for name in (*cams, *BASELINES)}
    any_cam = next(iter(cams.values()))
    scoring = scorer or cast("CAM", any_cam)
    model = scoring.model  # a LoadedModel: the masked images are scored by TensorFlow
    from .video import progress_bar

    frames = 0
    bar = progress_bar(expected_frames(paths, options.every), "evaluate", options.progress)
    for name, rgb in frames_of(paths, options.every):
        frames += 1
        if bar is not None:
            bar.update(1)
        top_class = None
        for method, cam in cams.items():
            result = cam(rgb)
            class_index = int(result.class_indices[0]) if top_class is None else top_class
            if top_class is None:
                top_class = class_index
                class_index = top_class
            else:
                result = cam(rgb, classes=top_class)  # every method explains the same class
            results[method].scores.append(score_map(model, scoring.predict, rgb, result.heatmaps[0], class_index,
                                                    options.steps))
        shape = any_cam(rgb).heatmaps[0].shape
        for baseline, heat in (("random", random_map(shape, seed=frames)), ("center", center_map(shape))):
            results[baseline].scores.append(score_map(model, scoring.predict, rgb, heat, class_index, options.steps))
        log.info("scored %s (class %d)", name, top_class)
    if bar is not None:
        bar.close()
    if frames == 0:
        raise InputError("no frames to evaluate")
    summaries = [r.summary() for r in results.values()]
    chance = next(s for s in summaries if s["method"] == "random")
    for summary in summaries:
        if summary["method"] not in BASELINES:
            # Better than chance: deletion falls faster AND insertion rises faster than for a random map.
            summary["beats_random"] = (summary["deletion_auc"] < chance["deletion_auc"]
                                       and summary["insertion_auc"] > chance["insertion_auc"])
    videos = [str(p) for p in _expand(paths) if Path(str(p)).suffix.lower() in VIDEO_SUFFIXES]
    if videos:
        for summary in summaries:
            if summary["method"] in cams:
                summary["stability"] = video_stability(cams[summary["method"]], videos, options.smooth,
                                                       options.progress)
    if options.plot is not None:
        plot_curves(results, options)
    return summaries


def expected_frames(paths: Sequence[str], every: int) -> int | None:
    """How many frames :func:`frames_of` will give, from the videos' headers (None if one has none)."""
    total = 0
    for spec in _expand(paths):
        if Path(spec).suffix.lower() not in VIDEO_SUFFIXES:
            total += 1
            continue
        capture = cv2.VideoCapture(spec)
        try:
            count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if capture.isOpened() else 0
        finally:
            capture.release()
        if count <= 0:
            return None
        total += -(-count // every)
    return total


def _expand(paths: Sequence[str]) -> Iterator[str]:
    for spec in paths:
        if Path(str(spec)).is_dir():
            yield from (str(p) for p in _folder_files(Path(str(spec))))
        else:
            yield str(spec)


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


def print_summaries(summaries: list[dict], as_json: bool, out: TextIO = sys.stdout) -> None:
    if as_json:
        for summary in summaries:
            print(json.dumps(summary), file=out)
        return
    print(f"{'method':12} {'deletion AUC (lower is better)':>31} {'insertion AUC (higher)':>23} "
          f"{'Average Drop %':>15} {'Increase %':>11}  frames", file=out)
    for s in summaries:
        note = "" if s.get("beats_random", True) else "  does NOT beat the random map"
        print(f"{s['method']:12} {s['deletion_auc']:31.4f} {s['insertion_auc']:23.4f} {s['average_drop']:15.2f} "
              f"{s['increase_in_confidence']:11.2f}  {s['frames']}{note}", file=out)
    stable = [s for s in summaries if "stability" in s]
    if stable:
        print("\nstability on the videos (frame-to-frame correlation of the heatmaps, every frame):", file=out)
        for s in stable:
            st = s["stability"]
            print(f"{s['method']:12} without smoothing {st['mean']} +- {st['std']}; with --smooth {st['smooth']}: "
                  f"{st['smoothed_mean']} +- {st['smoothed_std']}; smoothing lags {st['lag_frames']} frames "
                  f"behind a change ({st['changes']} changes)", file=out)


def plot_curves(results: dict[str, MethodScores], options: EvaluateOptions) -> None:
    """Mean deletion and insertion curves of every method, side by side, written atomically."""
    import io

    if options.plot is None:
        return
    plot = options.plot
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, (left, right) = pyplot.subplots(1, 2, figsize=(10, 4), dpi=100)
    steps = np.linspace(0, 1, options.steps + 1)
    for name, scores in results.items():
        style = "--" if name in BASELINES else "-"
        left.plot(steps, np.mean([s.deletion for s in scores.scores], axis=0), style, label=name)
        right.plot(steps, np.mean([s.insertion for s in scores.scores], axis=0), style, label=name)
    for axis, title in ((left, "deletion (lower is better)"), (right, "insertion (higher is better)")):
        axis.set_title(title)
        axis.set_xlabel("fraction of pixels, hottest first")
        axis.set_ylabel("class probability")
        axis.set_ylim(0, 1)
        axis.grid(alpha=0.3)
    right.legend(fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format=plot.suffix.lower().lstrip("."))
    pyplot.close(figure)
    write_bytes_atomic(plot, buffer.getvalue(), options.overwrite)
