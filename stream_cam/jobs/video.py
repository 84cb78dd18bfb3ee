"""Video files: every frame, in order, batched through the engine, written at the input's fps.

Decoding (reader thread), the engine and drawing (main thread), and encoding
plus the log (sink thread) overlap, joined by bounded queues. The output is
written under a temporary name and moved into place when finalized, so an
existing file is never touched and a half-written file never carries the
final name while it is being written.
"""

from __future__ import annotations

import logging
import os
import sys
import time

import cv2
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from ..engine.gradcam import CAM
from ..engine.stream import ClassChoice, StreamExplainer
from ..errors import InputError, OutputError, StreamCamError
from ..render.frame import render_frame
from ..render.hud import HudState
from ..sinks.files import check_output_path
from ..sinks.video import VideoSink, check_codec
from ..sinks.worker import Annotated, JsonlLog, SinkThread, VideoFileSink
from ..sources.video import Frame, OrderedFrames, Reader, open_reader
from ..web.broadcast import Broadcaster
from ..web.server import WebServer
from .options import StreamOptions
from .signals import StopSignals

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov")


@dataclass
class VideoOptions(StreamOptions):
    """``serve`` here lets a browser watch the progress (view only)."""

    batch: int = 8
    hud: bool = True
    progress: bool = True


@dataclass
class VideoResult:
    source: str
    output: Path
    frames: int
    fps: float
    interrupted: str = ""
    expected: int | None = None  # the frame count the file's header announced

    @property
    def damaged(self) -> bool:
        """Fewer frames could be read than the header announced (truncated or corrupt)."""
        return not self.interrupted and self.expected is not None and self.frames < self.expected


def output_paths(inputs: Sequence[str], output: Path, options: VideoOptions) -> list[Path]:
    """One output per input: ``output`` is a file for one input, a folder for several."""
    if len(inputs) == 1 and output.suffix.lower() in VIDEO_SUFFIXES:
        paths = [output]
    else:
        if output.exists() and not output.is_dir():
            raise OutputError(f"-o {output} must be a folder when several inputs are given")
        output.mkdir(parents=True, exist_ok=True)
        suffix = ".mp4" if options.codec in ("mp4v", "h264") else ".avi"
        paths = [output / f"{Path(spec).stem}_gradcam{suffix}" for spec in inputs]
    if len(set(paths)) != len(paths):
        raise OutputError("two inputs have the same name; process them separately")
    for path in paths:
        check_codec(options.codec, path)
        check_output_path(path, options.overwrite)
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


def _temporary_path(path: Path) -> Path:
    return path.with_name(f".{path.stem}.part{path.suffix}")


def _publish(tmp: Path, path: Path, overwrite: bool) -> None:
    """Move the finalized temporary file to its name, never over an existing file."""
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)
    except FileExistsError as exc:
        raise OutputError(f"{path} appeared while writing; the result is in {tmp}") from exc
    except OSError:
        if path.exists():
            raise OutputError(f"{path} appeared while writing; the result is in {tmp}") from None
        os.replace(tmp, path)
        return
    tmp.unlink()


def process_video(cam: CAM, reader: Reader, output: Path, options: VideoOptions,
                  stop: StopSignals | None = None) -> VideoResult:
    """Explain every frame of ``reader`` into ``output``; always finalizes what was written."""
    info = reader.info
    explainer = StreamExplainer(cam, ClassChoice(options.top_k, list(options.classes)), options.top_k, options.smooth)
    tmp = _temporary_path(output)
    # Open the files first: if one cannot be written, no thread has started yet.
    log_sink = JsonlLog(options.log, cam.model.label, options.overwrite) if options.log is not None else None
    video = VideoSink(tmp, info.width, info.height, info.fps, options.codec, overwrite=True).open()
    depth = max(2 * options.batch, 8)
    frames = OrderedFrames(reader, maxsize=depth, prepare=explainer.prepare)
    bar = _progress(info.frame_count, info.source, options.progress)
    hud = HudState(source=Path(info.source).name)

    def render(item: Annotated) -> None:
        start = time.perf_counter()
        explanation = item.explanation
        hud.set_classes(explanation.top, explanation.class_index, cam.model.label)
        hud.fps = (bar.format_dict.get("rate") or 0.0) if bar is not None else 0.0
        item.image = render_frame(explanation.frame.image, explanation.heatmap, options.alpha,
                                  options.colormap, hud if options.hud else None)
        item.timings["render"] = (time.perf_counter() - start) * 1000
        if hub is not None:
            hub.publish(item.image, {"frame": explanation.frame.index, "fps": round(hud.fps, 2),
                                     "top": explanation.top_entries(cam.model.label),
                                     "explained": {"index": explanation.class_index, "label": hud.explained_label},
                                     "alpha": options.alpha, "colormap": options.colormap, "source": hud.source})

    sinks = SinkThread([VideoFileSink(video), *([log_sink] if log_sink else [])], maxsize=depth)
    hub = Broadcaster() if options.serve is not None else None
    server = WebServer(options.serve, hub, _view_only, options.token).start() if hub is not None else None
    count, interrupted = 0, ""
    try:
        for batch in batched(frames, options.batch):
            if stop is not None and stop.requested:
                interrupted = stop.requested
                break
            start = time.perf_counter()
            explanations = explainer.explain(batch)
            engine_ms = (time.perf_counter() - start) * 1000 / len(batch)
            for explanation in explanations:
                item = Annotated(None, explanation, {"capture": 0.0, "engine": engine_ms})
                render(item)  # here, not in the writer thread: measured as fast or faster on 2 cores
                sinks.put(item)
                count += 1
            if bar is not None:
                bar.update(len(batch))
    except (OSError, ValueError, RuntimeError, cv2.error) as exc:
        if isinstance(exc, StreamCamError):
            raise
        raise InputError(f"{info.source}: reading failed after frame {count - 1}: {exc}; "
                         f"the {count} frames before it are in {output}") from exc
    finally:
        frames.close()
        if server is not None:
            server.close()
        sinks.close()
        if bar is not None:
            bar.close()
        if video.frames_written or tmp.exists():
            _publish(tmp, output, options.overwrite)
    if sinks.failure is not None:
        raise OutputError(f"writing {output} failed after {video.frames_written} frames: {sinks.failure}")
    return VideoResult(info.source, output, video.frames_written, info.fps, interrupted, info.frame_count)


def _view_only(change: dict) -> dict:
    raise InputError("a video file is processed with fixed settings; controls act on live and demo")


def _progress(total: int | None, name: str, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="frame", desc=Path(name).name, file=sys.stderr, dynamic_ncols=True)


def run_videos(cam: CAM, inputs: Sequence[str], output: Path, options: VideoOptions) -> list[VideoResult]:
    """Process each input into its output; stop cleanly on Ctrl-C or SIGTERM."""
    if options.batch < 1:
        raise InputError(f"--batch must be at least 1, got {options.batch}")
    paths = output_paths(inputs, output, options)
    results = []
    with StopSignals() as stop:
        for spec, path in zip(inputs, paths):
            if stop.requested:
                break
            reader = open_reader(spec)
            if reader.info.live:
                reader.release()
                raise InputError(f"{spec} is a camera or stream; use 'stream-cam live --source {spec} --record OUT'")
            result = process_video(cam, reader, path, options, stop)
            results.append(result)
            print(f"{spec} -> {path} ({result.frames} frames at {result.fps:.2f} fps)"
                  + (f", stopped by {result.interrupted}" if result.interrupted else ""), flush=True)
            if result.damaged:
                print(f"stream-cam: warning: {spec}: only {result.frames} of {result.expected} frames could be "
                      f"read; the file is damaged or truncated after frame {result.frames - 1}. "
                      f"The readable frames are in {path}.", file=sys.stderr, flush=True)
    return results
