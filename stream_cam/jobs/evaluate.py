"""``stream-cam evaluate``: how faithful is each method's heatmap, on your images and videos?

For every input frame and every method: the map of the top class, its deletion and insertion
curves, and the image multiplied by the map (see :mod:`stream_cam.engine.faithfulness`). Two
baselines that know nothing, a random map and a centred Gaussian, are scored on the same
frames and classes. A method that does not beat the random map is reported as such.
"""

from __future__ import annotations

import logging
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence, TextIO

import cv2
import numpy as np

from .. import jsontext
from ..checks import check_count
from ..engine.faithfulness import DEFAULT_STEPS, Faithfulness, center_map, random_map, score_map
from ..engine.verdict import BEATS, INCONCLUSIVE, LEVEL, MIN_FRAMES, frames_needed, paired_interval, verdict
from ..errors import InputError
from ..sinks.files import check_output_path, write_bytes_atomic
from ..sources.images import BUILTIN_PREFIX, IMAGE_SUFFIXES, check_image_spec, read_image
from ..sources.readers import check_source, open_reader
from .stability import video_stability

if TYPE_CHECKING:
    from ..engine.explainer import Explains

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov")
BASELINES = ("random", "center")
MAX_STEPS = 1000
MAX_EVERY = 100_000
RANDOM_DRAWS = 8
MAX_DRAWS = 1000
DEFAULT_EVERY = 30
IMPUTE_THREADS = 2  # ROAD's sparse solves release the GIL: 1.8 -> 1.4 s per map on 2 cores


@dataclass
class EvaluateOptions:
    steps: int = DEFAULT_STEPS
    every: int = DEFAULT_EVERY  # a video: every Nth frame
    as_json: bool = False
    plot: Path | None = None
    per_frame: Path | None = None  # one JSON line per frame and method
    overwrite: bool = False
    written: dict[str, Path] = field(default_factory=dict)  # "plot"/"per_frame" -> the name each got
    smooth: float = 0.5  # videos: stability is reported without and with this smoothing
    progress: bool = True  # a bar of frames scored, on stderr
    draws: int = RANDOM_DRAWS  # seeded random maps whose mean is the random baseline
    road: bool = False  # ROAD's two curves too (about 1.4 s more per map on 2 cores)

    def validate(self) -> None:
        check_count(self.steps, MAX_STEPS, "--steps")
        check_count(self.every, MAX_EVERY, "--every")
        check_count(self.draws, MAX_DRAWS, "--draws")
        if self.plot is not None:
            if self.plot.suffix.lower() not in (".png", ".svg", ".pdf"):
                raise InputError(f"--plot {self.plot}: use a .png, .svg or .pdf file")
            check_output_path(self.plot, self.overwrite)
        if self.per_frame is not None:
            if self.per_frame.suffix.lower() != ".jsonl":
                raise InputError(f"--per-frame {self.per_frame}: name it {self.per_frame.stem}.jsonl")
            check_output_path(self.per_frame, self.overwrite)


# Each frame's scores, as a user reads them (Average Drop and Increase in %); ROAD's when asked for.
METRICS = {"deletion_auc": lambda f: f.deletion_auc, "insertion_auc": lambda f: f.insertion_auc,
           "average_drop": lambda f: 100 * f.drop, "increase_in_confidence": lambda f: 100.0 * f.increase}
ROAD_METRICS = {"road_morf_auc": lambda f: f.road_morf_auc, "road_lerf_auc": lambda f: f.road_lerf_auc}
DIGITS = {"average_drop": 2, "increase_in_confidence": 2}  # the AUCs: 4
# Each verdict: (the curve where lower is better, the one where higher is better), and its key
VERDICTS = {"verdict": ("deletion_auc", "insertion_auc"), "road_verdict": ("road_morf_auc", "road_lerf_auc")}
COMPARED = ("deletion_auc", "insertion_auc", "average_drop", "road_morf_auc", "road_lerf_auc")


def metrics_of(scores: Faithfulness) -> dict:
    """The metrics these scores have (ROAD's only when its curves were computed)."""
    return {**METRICS, **ROAD_METRICS} if scores.road is not None else METRICS


@dataclass
class MethodScores:
    """Every frame's scores for one method (or baseline): per frame, one map's, or several draws'."""

    method: str
    frames: list[list[Faithfulness]] = field(default_factory=list)

    @property
    def metrics(self) -> dict:
        return metrics_of(self.frames[0][0]) if self.frames else METRICS

    def per_frame(self, metric: str) -> np.ndarray:
        """``metric`` on each frame (the mean over the draws of a baseline with several)."""
        return np.array([np.mean([self.metrics[metric](f) for f in draws]) for draws in self.frames])

    def summary(self) -> dict:
        out: dict = {"method": self.method, "frames": len(self.frames)}
        for metric in self.metrics:
            out[metric] = round(float(self.per_frame(metric).mean()), DIGITS.get(metric, 4))
        if self.frames and len(self.frames[0]) > 1:
            out["draws"] = len(self.frames[0])
        return out

    def against(self, chance: "MethodScores") -> dict:
        """The paired intervals of (this - chance) per frame, the verdicts, and frames that would settle them."""
        compared = [m for m in COMPARED if m in self.metrics]
        differences = {m: self.per_frame(m) - chance.per_frame(m) for m in compared}
        intervals = {m: paired_interval(d, seed=i) for i, (m, d) in enumerate(differences.items())}
        frames = len(self.frames)
        out: dict = {"vs_random": {m: [round(lo, 4), round(hi, 4)] for m, (lo, hi) in intervals.items()}}
        for key, (lower, higher) in VERDICTS.items():
            if lower not in intervals:
                continue
            result = verdict(intervals[lower], intervals[higher], frames)
            out[key] = result
            if result == INCONCLUSIVE:
                needed = [frames_needed(differences[m]) for m in (lower, higher)]
                known = [n for n in needed if n is not None]
                out[key.replace("verdict", "frames_needed")] = max(known) if len(known) == len(needed) else None
        out["beats_random"] = out["verdict"] == BEATS
        return out


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
             scorer: Explains | None = None) -> list[dict]:
    """Score every method and both baselines on every frame; returns one summary per method.

    ``scorer``: the explainer whose model scores the masked images (default: the first method's).
    The TensorFlow engine when the methods run on LiteRT's cache; an exported ``.tflite`` file
    scores them itself, through its own uint8 input."""
    options.validate()
    results = {name: MethodScores(name) for name in (*cams, *BASELINES)}
    any_cam = next(iter(cams.values()))
    scoring = scorer or any_cam
    from .video import progress_bar

    frames, rows = 0, []
    bar = progress_bar(expected_frames(paths, options.every), "evaluate", options.progress)
    # ROAD imputes 18 images per map, one sparse solve each: two threads share them
    pool = ThreadPoolExecutor(IMPUTE_THREADS, "road") if options.road else None
    try:
        for name, rgb in frames_of(paths, options.every):
            frames += 1
            if bar is not None:
                bar.update(1)
            first = any_cam(rgb)
            top_class = int(first.class_indices[0])  # every method explains the first method's top class
            shape = first.heatmaps[0].shape
            # The maps: each method's, several seeded random draws (new ones on every frame), the centre
            maps = {method: [(first if cam is any_cam else cam(rgb, classes=top_class)).heatmaps[0]]
                    for method, cam in cams.items()}
            maps["random"] = [random_map(shape, seed=frames * options.draws + d) for d in range(options.draws)]
            maps["center"] = [center_map(shape)]
            for method, heats in maps.items():
                results[method].frames.append([score_map(scoring.model, scoring.predict, rgb, heat, top_class,
                                                         options.steps, options.road, pool) for heat in heats])
                scores = results[method].frames[-1]
                rows.append({"frame": name, "class": top_class, "method": method,
                             **{m: round(float(np.mean([get(f) for f in scores])), 5)
                                for m, get in metrics_of(scores[0]).items()}})
            log.info("scored %s (class %s)", name, top_class)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        if bar is not None:
            bar.close()
    if frames == 0:
        raise InputError("no frames to evaluate")
    summaries = [r.summary() for r in results.values()]
    for summary in summaries:
        if summary["method"] not in BASELINES:
            summary.update(results[summary["method"]].against(results["random"]))
    videos = [str(p) for p in _expand(paths) if Path(str(p)).suffix.lower() in VIDEO_SUFFIXES]
    if videos:
        for summary in summaries:
            if summary["method"] in cams:
                summary["stability"] = video_stability(cams[summary["method"]], videos, options.smooth,
                                                       options.progress)
    if options.plot is not None:
        from .curves import plot_curves

        plot_curves(results, options)
    if options.per_frame is not None:
        lines = "".join(jsontext.dumps(row) + "\n" for row in rows)
        options.written["per_frame"] = write_bytes_atomic(options.per_frame, lines.encode(), options.overwrite,
                                                          elsewhere=True)
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


def print_summaries(summaries: list[dict], as_json: bool, out: TextIO | None = None) -> None:
    out = out or sys.stdout  # the stdout of now, not of import time
    if as_json:
        for summary in summaries:
            print(jsontext.dumps(summary), file=out)
        return
    road = any("road_morf_auc" in s for s in summaries)
    print(f"{'method':12} {'deletion AUC (lower is better)':>31} {'insertion AUC (higher)':>23} "
          f"{'Average Drop %':>15} {'Increase %':>11}"
          + (f" {'ROAD MoRF (lower)':>18} {'ROAD LeRF (higher)':>19}" if road else "") + "  frames", file=out)
    for s in summaries:
        draws = f"  (mean of {s['draws']} random maps)" if "draws" in s else ""
        roads = f" {s['road_morf_auc']:18.4f} {s['road_lerf_auc']:19.4f}" if road else ""
        print(f"{s['method']:12} {s['deletion_auc']:31.4f} {s['insertion_auc']:23.4f} {s['average_drop']:15.2f} "
              f"{s['increase_in_confidence']:11.2f}{roads}  {s['frames']}{draws}", file=out)
    judged = [s for s in summaries if "verdict" in s]
    if judged:
        print(f"\nagainst the random map, per frame (method - random; {LEVEL:.0%} bootstrap intervals):", file=out)
        for s in judged:
            for key, (lower, higher) in VERDICTS.items():
                if key not in s:
                    continue
                low, high = s["vs_random"][lower], s["vs_random"][higher]
                names = ("deletion", "insertion") if key == "verdict" else ("ROAD MoRF", "ROAD LeRF")
                print(f"{s['method'] if key == 'verdict' else '':12} {s[key].upper():18} "
                      f"{names[0]} [{low[0]:+.4f}, {low[1]:+.4f}]  {names[1]} [{high[0]:+.4f}, {high[1]:+.4f}]"
                      f"{_settle(s, key)}", file=out)
    stable = [s for s in summaries if "stability" in s]
    if stable:
        print("\nstability on the videos (frame-to-frame correlation of the heatmaps, every frame):", file=out)
        for s in stable:
            st = s["stability"]
            lag = (f"smoothing lags {st['lag_frames']} frames behind a change ({st['changes']} changes)"
                   if st["lag_frames"] is not None else "no change in the video to lag behind")
            print(f"{s['method']:12} without smoothing {st['mean']} +- {st['std']}; with --smooth {st['smooth']}: "
                  f"{st['smoothed_mean']} +- {st['smoothed_std']}; {lag}", file=out)


def _settle(summary: dict, key: str = "verdict") -> str:
    """What would settle an inconclusive verdict (``key``: "verdict" or "road_verdict")."""
    if summary[key] != INCONCLUSIVE:
        return ""
    frames, needed = summary["frames"], summary.get(key.replace("verdict", "frames_needed"))
    few = f"; {frames} frames are too few for a verdict (at least {MIN_FRAMES})" if frames < MIN_FRAMES else ""
    if needed is None:
        return few + "; no difference seen, more frames would not show one"
    if needed <= frames:
        return few or "; the curves disagree (one better than random, the other worse)"
    return few + f"; about {needed} frames would tell (give more images, or a lower --every)"
