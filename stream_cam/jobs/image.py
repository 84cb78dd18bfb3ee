"""Image mode: the keras.io example's job, for many images and classes at once.

For each image: predict, explain the chosen classes, save one overlay per class
(heatmap resized to the ORIGINAL image, colormap, alpha blend) and report the
top-k, as text or as one JSON object per line.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence, TextIO

import cv2
import numpy as np

from .. import jsontext
from .. import defaults
from ..checks import check_count
from ..errors import OutputError
from ..frames import percent, score_value, short_label
from ..pixels import peak_xy
from ..render.colormap import colormap_lut
from ..render.overlay import overlay_heatmap
from ..sinks.files import check_folder, check_not_input, check_output_path, make_folder, write_image
from ..sources.images import IMAGE_SUFFIXES, display_name, read_image
from .options import DEFAULT_TOP_K, check_render_values

if TYPE_CHECKING:  # the engine's module loads TensorFlow; the checks before it must not
    from ..engine.device_frames import DeviceFramePath
    from ..engine.explainer import Explains

log = logging.getLogger(__name__)

MAX_EXPLAIN_TOP = 20


@dataclass
class ImageOptions:
    classes: Sequence[int] = ()  # explain these; empty = top-1 (or top explain_top)
    explain_top: int = 1
    top_k: int = DEFAULT_TOP_K
    alpha: float = defaults.ALPHA
    colormap: str = defaults.COLORMAP
    output: Path | None = None  # a file (one overlay) or a folder; None = current folder
    overwrite: bool = False
    as_json: bool = False
    inputs: Sequence[str] = ()  # the CLI's paths, kept for re-checking outputs
    class_count: int = 0  # --class given this many times (resolved into ``classes`` once labels are known)
    render: str = defaults.RENDER  # host | device | auto (jobs/pipeline.frame_path_for)

    @property
    def per_image(self) -> int:
        """Overlays made per image."""
        return len(self.classes) or self.class_count or self.explain_top

    def validate(self) -> None:
        check_render_values(self.alpha, self.colormap, self.top_k)
        check_count(self.explain_top, MAX_EXPLAIN_TOP, "--explain-top")


@dataclass
class ImageReport:
    path: str
    size: tuple[int, int]
    top: list[dict] = field(default_factory=list)
    explained: list[dict] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    method: str = ""  # the Explainer method that made the heatmaps
    runtime: str = ""  # what ran it: tensorflow or litert
    device: str = ""  # where: cpu or gpu:N


def output_paths(inputs: Sequence[str], per_image: int, options: ImageOptions) -> list[list[Path]]:
    """Decide and check every output path up front, creating nothing: a bad -o fails before any work."""
    total = len(inputs) * per_image
    out = options.output
    single: Path | None = out if out is not None and bool(out.suffix) and not out.is_dir() else None
    if single is not None and single.suffix.lower() not in IMAGE_SUFFIXES:
        raise OutputError(f"-o {out}: cannot write {single.suffix} images; use one of {', '.join(IMAGE_SUFFIXES)} "
                          "(or a folder name without a suffix)")
    single_file = single is not None
    if single_file and total != 1:
        raise OutputError(f"-o {out} names one file but {total} overlays will be made; give a folder instead")
    if not single_file and out is not None:
        if out.exists() and not out.is_dir():
            raise OutputError(f"-o {out} exists and is not a folder")
        check_folder(out)
    folder = out if out is not None and not single_file else Path(".")
    if options.class_count and not options.classes:
        return []  # named after class indices, which are known once the model's labels are
    plans = []
    for spec in inputs:
        stem = display_name(spec)
        if single is not None:
            names = [single]
        elif options.classes:
            names = [folder / f"{stem}_gradcam_{index}.png" for index in options.classes]
        elif per_image == 1:
            names = [folder / f"{stem}_gradcam.png"]
        else:
            names = [folder / f"{stem}_gradcam_top{rank + 1}.png" for rank in range(per_image)]
        # In a folder that this run will create, nothing can exist yet.
        plans.append([check_output_path(p, options.overwrite) if single_file or p.parent.is_dir() else p for p in names])
    check_not_input([p for paths in plans for p in paths], inputs)
    if len({p.resolve() for paths in plans for p in paths}) != total:
        raise OutputError("two inputs would write the same output name; give them different names")
    return plans


def explain_image(cam: Explains, spec: str, paths: list[Path], options: ImageOptions,
                  path: DeviceFramePath | None = None) -> ImageReport:
    """Explain one image and write its overlays to ``paths``; ``path``: made and drawn on the device."""
    rgb = read_image(spec)
    height, width = rgb.shape[:2]
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    drawn: list[np.ndarray] = []
    if path is not None:  # one device call: the photo as read in, its numbers and first overlay out
        targets = [list(options.classes) or [-(r + 1) for r in range(options.explain_top)]]
        images, result = path(bgr[None], np.array(targets, np.int32), colormap_lut(options.colormap), options.alpha)
        drawn = [images[0]]
    elif options.classes:
        result = cam(rgb, classes=[list(options.classes)])
    else:
        result = cam(rgb, top_k=options.explain_top)
    probabilities = result.probabilities[0]
    if not np.isfinite(probabilities).all():
        log.warning("%s: the model answers NaN (or inf): its scores are shown as n/a and written as null", spec)
    model = cam.model
    report = ImageReport(path=str(spec), size=(width, height), method=cam.method_name, runtime=cam.runtime,
                         device=cam.device)
    for index in result.top_indices(options.top_k)[0]:
        report.top.append(_entry(model.label(int(index)), int(index), probabilities))
    for j, output in enumerate(paths):
        index = int(result.class_indices[0, j])
        if j < len(drawn):
            overlay = drawn[j]
        elif path is not None:
            overlay = path.blend(bgr, result.heatmaps[0, j], options.alpha, colormap_lut(options.colormap))
        else:
            overlay = overlay_heatmap(bgr, result.heatmaps[0, j], options.alpha, options.colormap, bgr=True)
        write_image(output, overlay, options.overwrite)
        entry = _entry(model.label(index), index, probabilities)
        entry["peak_xy"] = list(peak_xy(result.heatmaps[0, j], height, width))
        report.explained.append(entry)
        report.outputs.append(str(output))
    return report


def _entry(label: str, index: int, probabilities: np.ndarray) -> dict:
    return {"index": index, "label": label, "score": score_value(float(probabilities[index]))}


def print_report(report: ImageReport, as_json: bool, out: TextIO | None = None) -> None:
    out = out or sys.stdout  # the stdout of now, not of import time (a notebook, a test may swap it)
    if as_json:
        print(jsontext.dumps(report.__dict__ | {"size": list(report.size)}), file=out, flush=True)
        return
    top = " | ".join(f"{short_label(t['label'])} {percent(t['score']).strip()}" for t in report.top)
    print(f"{report.path}: {top}", file=out)
    for entry, path in zip(report.explained, report.outputs):
        x, y = entry["peak_xy"]
        print(f"  explained {short_label(entry['label'])} ({entry['index']}, {percent(entry['score']).strip()}), "
              f"peak at x={x} y={y} -> {path}", file=out, flush=True)


def run_images(cam: Explains, inputs: Sequence[str], options: ImageOptions) -> list[ImageReport]:
    """Explain every input; fails before any work if an output cannot be written."""
    options.validate()
    per_image = options.per_image
    plans = output_paths(inputs, per_image, options)
    for folder in {path.parent for paths in plans for path in paths}:
        make_folder(folder)
    from .pipeline import frame_path_for  # the drawing choice every command shares

    frame_path = frame_path_for(cam, options.render)
    reports = []
    for spec, paths in zip(inputs, plans):
        report = explain_image(cam, spec, paths, options, frame_path)
        print_report(report, options.as_json)
        reports.append(report)
    return reports
