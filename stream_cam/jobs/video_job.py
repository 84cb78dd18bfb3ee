"""The ``video`` command's job around :func:`.video.process_video`: the output names of many inputs
(checked before any work), ``--resume``, the results table, and the one line said per input."""

from __future__ import annotations

import dataclasses
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import cv2

from ..errors import InputError, OutputError
from ..sinks.files import check_folder, check_not_input, check_output_path, make_folder, occupied
from ..sinks.results import ResultsTable, read_rows_of
from ..sinks.video import CODECS, check_codec
from ..sources.readers import Reader, VideoInfo, check_source, count_frames, open_reader
from .signals import StopSignals
from .video import VideoOptions, VideoResult, VideoRun, process_video

if TYPE_CHECKING:  # the engine's module loads TensorFlow; the checks before it must not
    from ..engine.explainer import Explains

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = tuple(sorted({suffix for _, suffixes in CODECS.values() for suffix in suffixes}))


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
    check_not_input(paths, inputs)
    for flag, extra in (("--log", options.log), ("--results", options.results)):
        check_not_input([extra] if extra is not None else [], inputs, flag)
    return paths


def report_notes(result: VideoResult) -> None:
    """What the user must know about where and how the output was written."""
    if result.requested is not None and result.output != result.requested:
        print(f"stream-cam: warning: {result.requested} appeared while this run was writing it (another run?); "
              f"nothing was replaced, and this run's result is in {result.output}", file=sys.stderr, flush=True)
    if result.padded_to is not None:
        width, height = result.padded_to
        print(f"stream-cam: note: the encoders store even sizes only, so the output is {width}x{height}: "
              "the input's last column/row is repeated once (no pixel is lost)", file=sys.stderr, flush=True)


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


def report_if_all_complete(inputs: Sequence[str], output: Path, options: VideoOptions) -> bool:
    """``--resume`` with nothing left to do: say so per input and return True, before any model loads."""
    if not options.resume:
        return False
    paths = output_paths(inputs, output, options)
    if not all(is_complete(spec, path) for spec, path in zip(inputs, paths)):
        return False
    for spec, path in zip(inputs, paths):
        report(spec, VideoResult(spec, path, 0, 0.0, skipped=True))
    return True


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


def run_videos(cam: Explains, inputs: Sequence[str], output: Path, options: VideoOptions) -> VideoRun:
    """Process each input into its output; stop cleanly on Ctrl-C or SIGTERM.

    With several inputs, one that cannot be read fails alone: it is reported and the others go on."""
    paths, done = prepare_job(inputs, output, options)
    results: list[VideoResult] = []
    stopped = ""
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
            # Stopped: the last video was cut short, or inputs were never reached.
            if stop.requested and (len(results) < len(inputs) or results[-1].interrupted):
                stopped = stop.requested
    finally:
        if table is not None:
            where = table.close()
            print(f"results: {table.rows} rows in {where}", flush=True)
    return VideoRun(results, stopped)


def open_video_file(spec: str) -> Reader:
    """A reader on a video file; a camera or stream is refused (it has no end to process up to)."""
    reader = open_reader(spec)
    if reader.info.live:
        reader.release()
        shown = reader.info.source  # redacted
        raise InputError(f"{shown} is a camera or stream; use 'stream-cam live --source ... --record OUT'")
    return reader


def _one_video(cam: Explains, spec: str, path: Path, options: VideoOptions, stop: StopSignals,
               table: ResultsTable | None) -> VideoResult:
    return process_video(cam, open_video_file(spec), path, options, stop, results=table, name=spec)


# A header claiming more frames than this (about 4 days at 30 fps), or none, is not believed: the
# driver counts the frames instead, so a lying header can neither stall nor exhaust the planning.
MAX_BELIEVED_FRAMES = 10_000_000


def probe_input(spec: str) -> VideoInfo:
    """The input's size, fps and frame count (counted when the header is missing or unbelievable):
    what the Ray driver plans its chunks from."""
    reader = open_video_file(spec)
    reader.release()
    info = reader.info
    if info.frame_count is None or info.frame_count > MAX_BELIEVED_FRAMES:
        counted = count_frames(spec)
        log.info("%s: the header says %s frames; counted %d", info.source, info.frame_count, counted)
        if counted == 0:
            raise InputError(f"{info.source}: no frame of it can be read")
        info = dataclasses.replace(info, frame_count=counted)
    return info
