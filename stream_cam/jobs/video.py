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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

import cv2

from ..checks import check_count
from ..engine.stream import ClassChoice, StreamExplainer
from ..errors import InputError, OutputError, StreamCamError
from ..frames import Frame
from ..render.hud import HudState
from ..sinks.audio import audio_codecs, with_audio
from ..sinks.files import publish, temporary_path
from ..sinks.video import VideoSink
from ..sinks.results import ResultsTable, VideoRows, check_results_path
from ..sinks.worker import Annotated, JsonlLog, SinkThread, VideoFileSink
from ..sources.pumps import OrderedFrames
from ..sources.readers import Reader
from ..web.broadcast import Broadcaster
from ..web.server import WebServer
from ..web.state import ControlChange
from .pipeline import FramePipeline, frame_path_for, Look, StreamView
from .options import StreamOptions
from .signals import StopSignals

if TYPE_CHECKING:  # the engine's module loads TensorFlow; the checks before it must not
    from ..engine.explainer import Explains

log = logging.getLogger(__name__)

MAX_BATCH = 256
DEFAULT_BATCH = 8
# Frames held at once (read ahead, in the batch, drawn, waiting for the writer) take at most about
# this much memory: at 640x480 the queues keep their usual depth, at 8K (100 MB a frame) they shrink.
FRAME_MEMORY_BYTES = 768 * 2**20


@dataclass(frozen=True)
class Depths:
    """How many frames the video path holds at once: a batch, and each queue's depth."""

    batch: int
    queue: int


def depths(width: int, height: int, batch: int, budget: int = FRAME_MEMORY_BYTES) -> Depths:
    """Queue depths and batch bounded by bytes, not only counts: the reader's queue and the writer's
    queue (``queue`` frames each) and the batch with its drawn copies (``2 * batch``) fit ``budget``.
    Small frames keep ``2 * batch`` (at least 8) per queue; huge ones go down to 2 and a smaller batch."""
    frame = max(width * height * 3, 1)
    fits = max(budget // frame, 1)  # frames the budget holds
    batch = max(1, min(batch, fits // 6))  # 2 * batch in flight, and 2 * 2 * batch in the two queues
    queue = max(2, min(max(2 * batch, 8), (fits - 2 * batch) // 2))
    return Depths(batch, queue)


@dataclass
class VideoOptions(StreamOptions):
    """``serve`` here lets a browser watch the progress (view only)."""

    batch: int = DEFAULT_BATCH
    hud: bool = True
    progress: bool = True
    results: Path | None = None  # the per-frame Parquet table
    resume: bool = False  # skip inputs whose outputs are complete

    def validate(self) -> None:
        super().validate()
        check_one_class(len(self.classes))
        check_count(self.batch, MAX_BATCH, "--batch")
        if self.results is not None:
            check_results_path(self.results, self.overwrite or self.resume)


def check_one_class(count: int) -> None:
    """A video file is drawn with one class per output: several --class would leave all but the
    first unexplained, so they are refused (live cycles through several with the c key)."""
    if count > 1:
        raise InputError(f"--class was given {count} times, but a video file shows one class's map; give one "
                         "--class and run once per class (live cycles through several with the c key)")


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


@dataclass
class VideoRun:
    """What a job of several videos (local or on Ray) did: one result per input it reached."""

    results: list[VideoResult]
    stopped: str = ""  # the signal that stopped the job ("" when it ran to the end)


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


def video_pipeline(cam: Explains, options: VideoOptions, source: str,
                   put: Callable[[Annotated], None] | None = None) -> tuple[FramePipeline, StreamView, Look]:
    """The frame path of a video file, the same for the local run and every Ray worker: the
    pipeline, the video's drawing state and how its frames are drawn (HUD with time code)."""
    explainer = StreamExplainer(cam, ClassChoice(options.top_k, list(options.classes)), options.top_k, options.smooth)
    look = Look(options.alpha, options.colormap, options.hud, time_code=True)
    pipeline = FramePipeline(explainer, cam.model.label, put, frame_path_for(cam, options.render))
    return pipeline, StreamView(HudState(source=Path(source).name)), look


def process_video(cam: Explains, reader: Reader, output: Path, options: VideoOptions,
                  stop: StopSignals | None = None, results: ResultsTable | None = None,
                  name: str | None = None) -> VideoResult:
    """Explain every frame of ``reader`` into ``output``; always finalizes what was written.

    ``results``: the job's per-frame table, whose rows for this video say ``name``."""
    info = reader.info
    label = cam.model.label
    held = depths(info.width, info.height, options.batch)
    if held.batch < options.batch:
        log.info("%s: %dx%d frames: batches of %d, not %d, to bound memory", info.source, info.width, info.height,
                 held.batch, options.batch)
    depth = held.queue
    count, interrupted, read_error = 0, "", None
    tmp = temporary_path(output)
    video = VideoSink(tmp, info.width, info.height, info.fps, options.codec, overwrite=True)
    final: Path | None = None
    ended = False  # the loop came to the input's end (or its first unreadable frame): not stopped
    try:
        with contextlib.ExitStack() as resources:
            # Open the files first: if one cannot be written, no thread has started yet.
            log_sink = JsonlLog(options.log, label, options.overwrite) if options.log is not None else None
            video.open()
            extra = [sink for sink in (log_sink, results and VideoRows(results, name or info.source, label)) if sink]
            sinks = resources.enter_context(SinkThread([VideoFileSink(video), *extra], maxsize=depth))
            pipeline, view, look = video_pipeline(cam, options, info.source, put=sinks.put)
            frames = resources.enter_context(OrderedFrames(reader, maxsize=depth, prepare=pipeline.prepare))
            if options.serve is not None:
                view.hub = Broadcaster()
                resources.enter_context(WebServer(options.serve, view.hub, _view_only, options.token,
                                                  options.allow_hosts))
                print(f"browser view: {options.serve.url}", flush=True)
            bar = progress_bar(info.frame_count, Path(info.source).name, options.progress)
            if bar is not None:
                resources.callback(bar.close)
            try:
                for batch in batched(frames, held.batch):
                    if stop is not None and stop.requested:
                        interrupted = stop.requested
                        break
                    for item in pipeline.process(batch, view, look):
                        pipeline.deliver(item, view, look, controls=False)
                        count += 1
                    if bar is not None:
                        bar.update(len(batch))
            except (OSError, ValueError, RuntimeError, cv2.error) as exc:
                if isinstance(exc, StreamCamError):
                    raise
                read_error = exc  # reported below, once the frames before it have their final name
            ended = not interrupted
    finally:
        with stop.shield() if stop is not None else contextlib.nullcontext():  # no signal cuts this short
            video.close()
            if video.frames_written:
                tmp = add_sound(tmp, info.source, output)  # the input's audio, copied, cut to the video's length
            if video.frames_written and not ended:
                # Stopped (a signal, a second Ctrl-C, a failed write): the frames done, playable, as NAME.partial.
                final = keep_partial(tmp, output, video.frames_written)
            elif video.frames_written:
                # Every frame (up to a damaged input's first unreadable one) under its final name; never over
                # a file another run published meanwhile (then under the next free name, and the result says
                # which). --resume redoes a half-written output of an earlier run: that one is replaced.
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
                       requested=None if interrupted else output,
                       padded_to=video.encoded_size if video.padded else None)


def add_sound(tmp: Path, source: str, output: Path) -> Path:
    """The finished (temporary) video with the input's audio copied in, when it has any: the file to
    publish. Where the audio cannot be kept, the video alone, and stderr says why, once per output."""
    codecs = audio_codecs(source)
    if not codecs:
        return tmp
    joined = temporary_path(output)
    why = with_audio(tmp, source, joined)
    if why:
        joined.unlink(missing_ok=True)
        print(f"stream-cam: note: {output.name} has no sound: the input's audio ({', '.join(codecs)}) could not be "
              f"copied into a {output.suffix} file ({why})", file=sys.stderr, flush=True)
        return tmp
    tmp.unlink()
    return joined


def partial_path(output: Path) -> Path:
    """Where a stopped run keeps the frames it finished: ``NAME.partial.EXT`` beside the output."""
    return output.with_name(f"{output.stem}.partial{output.suffix}")


def keep_partial(tmp: Path, output: Path, frames: int) -> Path:
    """A stopped run's finalized (playable) file under :func:`partial_path`, never under the final
    name, which only a complete output gets; said on stderr. Local and Ray runs alike."""
    kept = publish(tmp, partial_path(output), overwrite=False, elsewhere=True)
    print(f"stream-cam: stopped: the {frames} frames done are in {kept} ({output} is made only when complete; "
          "run the same command again, or with --resume, to make it)", file=sys.stderr, flush=True)
    return kept


def _view_only(change: ControlChange) -> dict:
    raise InputError("a video file is processed with fixed settings; controls act on live and demo")


def progress_bar(total: int | None, name: str, enabled: bool):
    """A tqdm bar of frames on stderr, or None."""
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="frame", desc=name, file=sys.stderr, dynamic_ncols=True)

