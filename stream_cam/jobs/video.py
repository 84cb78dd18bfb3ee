"""Video files: every frame, in order, batched through the engine, written at the input's fps.

Decoding (reader thread), the engine and drawing (main thread), and encoding
plus the log (sink thread) overlap, joined by bounded queues. The output is
written under a temporary name and moved into place when finalized, so an
existing file is never touched and a half-written file never carries the
final name while it is being written.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Sequence

import cv2
import numpy as np

from ..checks import check_count
from ..engine.stream import ClassChoice, StreamExplainer
from ..errors import InputError, OutputError, StreamCamError
from ..frames import Explanation, Frame
from ..pixels import StabilityMeter
from ..render.frame import render_frame
from ..render.hud import HudState
from ..sinks.files import check_folder, check_output_path, make_folder, occupied, publish, temporary_path
from ..sinks.video import CODECS, VideoSink, check_codec
from ..sinks.results import ResultsTable, VideoRows, check_results_path, read_rows_of
from ..sinks.worker import Annotated, JsonlLog, SinkThread, VideoFileSink
from ..sources.pumps import OrderedFrames
from ..sources.readers import Reader, check_source, open_reader
from ..web.broadcast import Broadcaster
from ..web.server import WebServer
from ..web.state import ControlChange, ViewState
from .options import StreamOptions
from .signals import StopSignals

if TYPE_CHECKING:  # the engine's module loads TensorFlow; the checks before it must not
    from ..engine.explainer import Explainer

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = tuple(sorted({suffix for _, suffixes in CODECS.values() for suffix in suffixes}))
MAX_BATCH = 256


@dataclass
class VideoOptions(StreamOptions):
    """``serve`` here lets a browser watch the progress (view only)."""

    batch: int = 8
    hud: bool = True
    progress: bool = True
    results: Path | None = None  # the per-frame Parquet table
    resume: bool = False  # skip inputs whose outputs are complete

    def validate(self) -> None:
        super().validate()
        check_count(self.batch, MAX_BATCH, "--batch")
        if self.results is not None:
            check_results_path(self.results, self.overwrite or self.resume)


@dataclass
class VideoResult:
    source: str
    output: Path
    frames: int
    fps: float
    interrupted: str = ""
    expected: int | None = None  # the frame count the file's header announced
    requested: Path | None = None  # the name asked for, when another run took it meanwhile
    padded_to: tuple[int, int] | None = None  # (width, height) in the file when the input's was odd
    skipped: bool = False  # --resume found it complete
    error: str = ""  # why this input failed (the others went on)

    @property
    def damaged(self) -> bool:
        """Fewer frames could be read than the header announced (truncated or corrupt), or none."""
        if self.error:
            return True
        return not self.interrupted and self.expected is not None and self.frames < self.expected


def output_paths(inputs: Sequence[str], output: Path, options: VideoOptions) -> list[Path]:
    """One output per input: ``output`` is a file for one input, a folder for several.

    Decides and checks every path without creating anything: a refused run leaves no trace."""
    looks_like_file = bool(output.suffix) and not output.is_dir()
    if looks_like_file and output.suffix.lower() not in VIDEO_SUFFIXES:
        raise OutputError(f"-o {output}: cannot write {output.suffix} files; use one of {', '.join(VIDEO_SUFFIXES)} "
                          "(or a folder name without a suffix)")
    if looks_like_file and len(inputs) > 1:
        raise OutputError(f"-o {output} names one file but {len(inputs)} inputs were given; give a folder")
    if looks_like_file:
        paths = [output]
    else:
        if output.exists() and not output.is_dir():
            raise OutputError(f"-o {output} must be a folder when several inputs are given")
        check_folder(output)
        suffix = ".mp4" if options.codec in ("mp4v", "h264") else ".avi"
        paths = [output / f"{Path(spec).stem}_gradcam{suffix}" for spec in inputs]
    if len(set(paths)) != len(paths):
        raise OutputError("two inputs have the same name; process them separately")
    for path in paths:
        check_codec(options.codec, path)
        if looks_like_file or path.parent.is_dir():  # in a folder this run will create, nothing exists yet
            check_output_path(path, options.overwrite or options.resume)
            if options.resume and not options.overwrite and occupied(path):
                check_resumable(path)
    if options.log is not None and len(inputs) > 1:
        raise InputError("--log takes one input at a time")
    return paths


def batched(frames: Iterable[Frame], size: int) -> Iterator[list[Frame]]:
    """Groups of ``size`` frames; if the source fails, the frames read before it still come out."""
    batch: list[Frame] = []
    try:
        for frame in frames:
            batch.append(frame)
            if len(batch) == size:
                yield batch
                batch = []
    except Exception:
        if batch:
            yield batch
        raise
    if batch:
        yield batch


class VideoAnnotator:
    """The work on each batch of a video's frames: explain, score stability, draw heatmap and HUD.

    The local run and every Ray worker use this one class, so their frames are the same."""

    def __init__(self, cam: Explainer, options: VideoOptions, source: str) -> None:
        self.options = options
        self.label = cam.model.label
        self.explainer = StreamExplainer(cam, ClassChoice(options.top_k, list(options.classes)), options.top_k,
                                         options.smooth)
        self.hud = HudState(source=Path(source).name)
        self.meter = StabilityMeter()

    def prepare(self, image: np.ndarray) -> np.ndarray:
        return self.explainer.prepare(image)

    def annotate(self, batch: list[Frame]) -> list[Annotated]:
        start = time.perf_counter()
        explanations = self.explainer.explain(batch)
        engine_ms = (time.perf_counter() - start) * 1000 / len(batch)
        items = []
        for explanation in explanations:
            stability = self.meter.update(explanation.frame.index, explanation.class_index, explanation.heatmap)
            item = Annotated(None, explanation, {"capture": 0.0, "engine": engine_ms}, stability=stability)
            # Draw here, not in the writer thread: measured as fast or faster on 2 cores.
            item.image = _render(explanation, self.hud, self.label, self.options, item.timings)
            items.append(item)
        return items


def process_video(cam: Explainer, reader: Reader, output: Path, options: VideoOptions,
                  stop: StopSignals | None = None, results: ResultsTable | None = None,
                  name: str | None = None) -> VideoResult:
    """Explain every frame of ``reader`` into ``output``; always finalizes what was written.

    ``results``: the job's per-frame table, whose rows for this video say ``name``."""
    info = reader.info
    annotator = VideoAnnotator(cam, options, info.source)
    label = cam.model.label
    hub = Broadcaster() if options.serve is not None else None
    depth = max(2 * options.batch, 8)
    count, interrupted, read_error = 0, "", None
    tmp = temporary_path(output)
    video = VideoSink(tmp, info.width, info.height, info.fps, options.codec, overwrite=True)
    final: Path | None = None
    try:
        with contextlib.ExitStack() as resources:
            # Open the files first: if one cannot be written, no thread has started yet.
            log_sink = JsonlLog(options.log, label, options.overwrite) if options.log is not None else None
            video.open()
            extra = [sink for sink in (log_sink, results and VideoRows(results, name or info.source, label)) if sink]
            sinks = resources.enter_context(SinkThread([VideoFileSink(video), *extra], maxsize=depth))
            frames = resources.enter_context(OrderedFrames(reader, maxsize=depth, prepare=annotator.prepare))
            if hub is not None and options.serve is not None:
                resources.enter_context(WebServer(options.serve, hub, _view_only, options.token, options.allow_hosts))
                print(f"browser view: {options.serve.url}", flush=True)
            bar = progress_bar(info.frame_count, Path(info.source).name, options.progress)
            if bar is not None:
                resources.callback(bar.close)
            try:
                for batch in batched(frames, options.batch):
                    if stop is not None and stop.requested:
                        interrupted = stop.requested
                        break
                    for item in annotator.annotate(batch):
                        if hub is not None:
                            explanation = item.explanation
                            hub.publish(item.image, _view_state(explanation, annotator.hud, label, options).as_dict(),
                                        raw=explanation.frame.image)
                        sinks.put(item)
                        count += 1
                    if bar is not None:
                        bar.update(len(batch))
            except (OSError, ValueError, RuntimeError, cv2.error) as exc:
                if isinstance(exc, StreamCamError):
                    raise
                read_error = exc  # reported below, once the frames before it have their final name
    finally:
        video.close()
        if video.frames_written:
            # Every frame written so far, under its final name; never over a file another run
            # published meanwhile (then under the next free name, and the result says which).
            # --resume redoes a half-written output of an earlier run: that one is replaced.
            final = publish(tmp, output, options.overwrite or options.resume, elsewhere=True)
        elif tmp.exists():
            tmp.unlink()
    where = final or output
    if read_error is not None:
        raise InputError(f"{info.source}: reading failed after frame {count - 1}: {read_error}; "
                         f"the {video.frames_written} frames before it are in {where}") from read_error
    if sinks.failure is not None:
        raise OutputError(f"writing {where} failed after {video.frames_written} frames: {sinks.failure}")
    return VideoResult(info.source, where, video.frames_written, info.fps, interrupted, info.frame_count,
                       requested=output, padded_to=video.encoded_size if video.padded else None)


def _render(explanation: Explanation, hud: HudState, label: Callable[[int], str], options: VideoOptions,
            timings: dict[str, float]) -> np.ndarray:
    """The annotated frame: heatmap, and the HUD with what belongs to the video (time code, classes)."""
    start = time.perf_counter()
    hud.set_classes(explanation.top, explanation.class_index, label)
    hud.time_code = explanation.frame.timestamp
    hud.method = explanation.method
    image = render_frame(explanation.frame.image, explanation.heatmap, options.alpha, options.colormap,
                         hud if options.hud else None)
    timings["render"] = (time.perf_counter() - start) * 1000
    return image


def _view_state(explanation: Explanation, hud: HudState, label: Callable[[int], str],
                options: VideoOptions) -> ViewState:
    score = explanation.score
    return ViewState(frame=explanation.frame.index, top=explanation.top_entries(label),
                     explained={"index": explanation.class_index, "label": hud.explained_label,
                                "score": None if score is None else round(score, 4)},
                     alpha=options.alpha, colormap=options.colormap, source=hud.source, controls=False,
                     method=explanation.method)


def report_notes(result: VideoResult) -> None:
    """What the user must know about where and how the output was written."""
    if result.requested is not None and result.output != result.requested:
        print(f"stream-cam: warning: {result.requested} appeared while this run was writing it (another run?); "
              f"nothing was replaced, and this run's result is in {result.output}", file=sys.stderr, flush=True)
    if result.padded_to is not None:
        width, height = result.padded_to
        print(f"stream-cam: note: the encoders store even sizes only, so the output is {width}x{height}: "
              "the input's last column/row is repeated once (no pixel is lost)", file=sys.stderr, flush=True)


def _view_only(change: ControlChange) -> dict:
    raise InputError("a video file is processed with fixed settings; controls act on live and demo")


def progress_bar(total: int | None, name: str, enabled: bool):
    """A tqdm bar of frames on stderr, or None."""
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="frame", desc=name, file=sys.stderr, dynamic_ncols=True)


def check_resumable(output: Path) -> None:
    """``--resume`` redoes only what an earlier run left: a readable video file. Anything else at that
    name (a link, notes, a damaged file) is the user's, and is refused unless ``--overwrite``."""
    problem = "is a symbolic link" if output.is_symlink() else "is not a regular file" if not output.is_file() else ""
    if not problem:
        capture = cv2.VideoCapture(str(output))
        try:
            if not capture.isOpened() or not capture.grab():
                problem = "is not a video an earlier run wrote"
        finally:
            capture.release()
    if problem:
        raise OutputError(f"--resume: {output} {problem}; nothing was replaced (pass --overwrite to replace it, "
                          "or give another -o)")


def is_complete(spec: str, output: Path) -> bool:
    """``--resume``: an earlier run's output has every frame of its input (as the headers say)."""
    if not output.is_file():
        return False
    counts = []
    for path in (spec, str(output)):
        capture = cv2.VideoCapture(path)
        try:
            counts.append(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if capture.isOpened() else 0)
        finally:
            capture.release()
    return counts[0] > 0 and counts[0] == counts[1]


def open_results(options: VideoOptions, skipped: Sequence[str]) -> ResultsTable | None:
    """The job's per-frame table; with --resume, the earlier table's rows of the skipped inputs are kept."""
    if options.results is None:
        return None
    keep = read_rows_of(options.results, skipped) if options.resume else None
    return ResultsTable(options.results, overwrite=options.overwrite or options.resume, keep=keep)


def prepare_job(inputs: Sequence[str], output: Path, options: VideoOptions) -> tuple[list[Path], list[bool]]:
    """Check the job (options, inputs, outputs), make the output folders; returns each input's
    output and whether --resume skips it (its output is complete). Local and Ray runs alike."""
    options.validate()
    for spec in inputs:
        check_source(spec)
    paths = output_paths(inputs, output, options)
    for folder in {path.parent for path in paths}:
        make_folder(folder)
    return paths, [options.resume and is_complete(spec, path) for spec, path in zip(inputs, paths)]


def report(spec: str, result: VideoResult) -> None:
    """What the user must know about one input's run: where, how many frames, what went wrong."""
    if result.skipped:
        print(f"{spec}: {result.output} is complete; skipped (--resume)", flush=True)
        return
    if result.error:
        print(f"stream-cam: error: {result.error}", file=sys.stderr, flush=True)
        return
    print(f"{spec} -> {result.output} ({result.frames} frames at {result.fps:.2f} fps)"
          + (f", stopped by {result.interrupted}" if result.interrupted else ""), flush=True)
    report_notes(result)
    if result.damaged:
        print(f"stream-cam: warning: {spec}: only {result.frames} of {result.expected} frames could be "
              f"read; the file is damaged or truncated after frame {result.frames - 1}. "
              f"The readable frames are in {result.output}.", file=sys.stderr, flush=True)


def run_videos(cam: Explainer, inputs: Sequence[str], output: Path, options: VideoOptions) -> list[VideoResult]:
    """Process each input into its output; stop cleanly on Ctrl-C or SIGTERM.

    With several inputs, one that cannot be read fails alone: it is reported and the others go on."""
    paths, done = prepare_job(inputs, output, options)
    results: list[VideoResult] = []
    table = open_results(options, [spec for spec, skip in zip(inputs, done) if skip])
    try:
        with StopSignals() as stop:
            for spec, path, skip in zip(inputs, paths, done):
                if stop.requested:
                    break
                if skip:
                    result = VideoResult(spec, path, 0, 0.0, skipped=True)
                else:
                    try:
                        result = _one_video(cam, spec, path, options, stop, table)
                    except (InputError, ConnectionError) as exc:
                        if len(inputs) == 1:
                            raise
                        result = VideoResult(spec, path, 0, 0.0, error=str(exc))
                results.append(result)
                report(spec, result)
    finally:
        if table is not None:
            where = table.close()
            print(f"results: {table.rows} rows in {where}", flush=True)
    return results


def open_video_file(spec: str) -> Reader:
    """A reader on a video file; a camera or stream is refused (it has no end to process up to)."""
    reader = open_reader(spec)
    if reader.info.live:
        reader.release()
        shown = reader.info.source  # redacted
        raise InputError(f"{shown} is a camera or stream; use 'stream-cam live --source ... --record OUT'")
    return reader


def _one_video(cam: Explainer, spec: str, path: Path, options: VideoOptions, stop: StopSignals,
               table: ResultsTable | None) -> VideoResult:
    return process_video(cam, open_video_file(spec), path, options, stop, results=table, name=spec)
