"""``stream-cam``'s entry point: parse, check everything that needs no model (``plan``), then
import TensorFlow, load the model and run the command.

Every user-facing problem becomes ONE line on stderr and a non-zero exit; a traceback
only with ``--debug``. Exit statuses (the same for every command):

    0    done                       2    bad input (a file, an option, a source)
    1    internal error (a bug)     3    a damaged input: every readable frame was processed
    130  stopped by Ctrl-C          143  stopped by SIGTERM
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING, NoReturn, Sequence

from ..errors import OutputError, StreamCamError
from ..jobs.engine_spec import EngineSpec
from .parser import PROG, build_parser, join_dash_values
from .plan import Plan, make_plan, resolve_classes

if TYPE_CHECKING:
    from ..jobs.video import VideoRun

log = logging.getLogger("stream_cam")

EXIT_OK = 0
EXIT_INTERNAL_ERROR = 1
EXIT_USER_ERROR = 2
EXIT_DAMAGED_INPUT = 3
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143
STOP_EXIT = {"SIGINT": EXIT_INTERRUPTED, "SIGTERM": EXIT_TERMINATED}


def run_image(args: argparse.Namespace, plan: Plan, cam) -> int:
    from ..jobs.image import run_images

    run_images(cam, args.paths, plan.options)
    return EXIT_OK


def run_live(args: argparse.Namespace, plan: Plan, cam, reader_factory=None) -> int:
    from ..jobs.live import LiveRun

    stats = LiveRun(cam, plan.options, reader_factory).run()
    print(f"{stats.shown} frames shown at {stats.fps:.1f} fps, {stats.dropped} stale frames dropped"
          + (f"; stopped by {stats.stopped_by}" if stats.stopped_by else ""), flush=True)
    for path, frames in stats.recordings:
        print(f"recorded {path} ({frames} frames)", flush=True)
    for path in stats.snapshots:
        print(f"saved {path}", flush=True)
    return STOP_EXIT.get(stats.stopped_by, EXIT_OK)


def run_video(args: argparse.Namespace, plan: Plan, cam) -> int:
    from ..jobs.video_job import run_videos

    return video_exit(run_videos(cam, args.inputs, args.output, plan.options), len(args.inputs))


def video_exit(run: VideoRun, inputs: int) -> int:
    """0 when every input is done; 3 when one could not be (fully) read; 130/143 when stopped."""
    if run.stopped:
        return STOP_EXIT.get(run.stopped, EXIT_INTERRUPTED)
    if len(run.results) < inputs:
        return EXIT_INTERRUPTED
    return EXIT_DAMAGED_INPUT if any(r.damaged for r in run.results) else EXIT_OK


def run_demo(args: argparse.Namespace, plan: Plan, cam) -> int:
    from ..jobs.video import process_video
    from ..jobs.video_job import report_notes
    from ..sinks.files import make_folder
    from ..sources.demo import demo_reader

    if plan.interactive:
        return run_live(args, plan, cam, lambda: demo_reader(args.seconds_per_scene))
    if args.output is None and args.window:
        print("no display found: writing the demo to a video file instead", flush=True)
    from ..jobs.signals import StopSignals

    output = plan.output
    if output is None:  # the planner names a file for every demo that is not live
        raise OutputError("the demo has no output file; give -o FILE.mp4")
    make_folder(output.parent)
    with StopSignals() as stop:  # a signal ends the clip early; what was written is kept and said
        result = process_video(cam, demo_reader(args.seconds_per_scene), output, plan.options, stop=stop)
    print(f"wrote the demo video to {result.output.resolve()} ({result.frames} frames, {result.fps:.0f} fps"
          + (f"; stopped by {result.interrupted})" if result.interrupted else ")"), flush=True)
    report_notes(result)
    return STOP_EXIT.get(result.interrupted, EXIT_OK)


def run_evaluate(args: argparse.Namespace, plan: Plan, cam) -> int:
    from ..engine.litert import LiteRTExplainer
    from ..jobs.evaluate import evaluate, print_summaries

    if isinstance(cam, LiteRTExplainer) and cam.source is None:
        # An exported .tflite file: its one method, and its own uint8 input scores the masked images
        summaries = evaluate({cam.method_name: cam}, args.paths, plan.options, scorer=cam)
    else:
        # The maps come from the run's runtime (LiteRT for the methods it has); the scores of the masked
        # images from the TensorFlow model (the same numbers, to 1e-6: README, "Runtimes").
        from ..engine.methods import build_method

        engine = cam.source if isinstance(cam, LiteRTExplainer) and cam.source is not None else cam
        convert = cam.convert if isinstance(cam, LiteRTExplainer) else None

        def method(name: str):
            built = build_method(name, engine.model, jit_compile=args.xla, score_channels=args.score_channels)
            return convert(built) if convert is not None else built

        cams = {name: cam if name == cam.method_name else method(name)
                for name in args.methods if name in cam.methods or not args.all_methods}
        summaries = evaluate(cams, args.paths, plan.options, scorer=engine)
    print_summaries(summaries, plan.options.as_json)
    side = sys.stderr if plan.options.as_json else sys.stdout
    for kind, asked in (("plot", plan.options.plot), ("per_frame", plan.options.per_frame)):
        got = plan.options.written.get(kind)
        if got is not None and asked is not None and got != asked:  # another run published the name meanwhile
            print(f"stream-cam: warning: {asked} appeared while this run was writing it (another run?); nothing "
                  f"was replaced, and this run's is {got}", file=sys.stderr, flush=True)
    if plan.options.plot is not None:
        print(f"curves: {plan.options.written.get('plot', plan.options.plot)}", file=side, flush=True)
    return EXIT_OK


def run_export(args: argparse.Namespace, plan: Plan, cam) -> int:
    from ..jobs.export import run_export as export

    report = export(cam, plan.options)
    print(f"wrote {report.path} ({report.size_bytes / 1e6:.1f} MB, {cam.method_name}, {plan.options.precision})",
          flush=True)
    if report.top1_exported is not None:
        same = "the same" if report.top1_exported == report.top1_engine else "a DIFFERENT"
        print(f"checked with LiteRT on skimage:chelsea: {same} top class as the engine "
              f"({cam.model.label(report.top1_exported)}), heatmaps within {report.max_heatmap_difference:.1e}",
              flush=True)
    return EXIT_OK


COMMANDS = {"image": run_image, "live": run_live, "video": run_video, "demo": run_demo, "evaluate": run_evaluate, "export": run_export}


class Terminated(KeyboardInterrupt):
    """SIGTERM outside the stream loops (loading, tracing): stop as Ctrl-C would."""


# Signals received outside the stream loops. TensorFlow's lazy importer turns a KeyboardInterrupt
# raised inside its import into a RuntimeError, so the signal itself is remembered too.
_received: list[int] = []


def _terminate(signum: int, frame: object) -> None:
    _received.append(signum)
    raise Terminated


def _interrupt(signum: int, frame: object) -> None:
    _received.append(signum)
    raise KeyboardInterrupt


def _stopped(terminated: bool) -> NoReturn:
    """Leave with 130 (Ctrl-C) or 143 (SIGTERM); everything is already closed (finally blocks ran)."""
    print(f"{PROG}: {'stopped by SIGTERM' if terminated else 'interrupted'}", file=sys.stderr)
    # An interrupt inside TensorFlow's import leaves CPython marked "killed by SIGINT", and
    # it would re-raise the signal at exit: leave with the status we mean.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(EXIT_TERMINATED if terminated else EXIT_INTERRUPTED)


def run_video_on_ray(args: argparse.Namespace, plan: Plan) -> int:
    from ..jobs.ray_video import run_videos_on_ray

    run = run_videos_on_ray(EngineSpec.from_args(args), args.inputs, args.output, plan.options, plan.cluster)
    return video_exit(run, len(args.inputs))


def run_cameras(args: argparse.Namespace) -> int:
    import json

    from ..sources.cameras import list_cameras

    cameras = list_cameras()
    if args.json:
        print(json.dumps([camera.as_dict() for camera in cameras]), flush=True)
        return EXIT_OK
    if not cameras:
        print("no camera found on this machine (a video file or URL works as --source)", flush=True)
    for camera in cameras:
        print(f"{camera.path}" + (f"  {camera.name}" if camera.name else ""), flush=True)
        for line in camera.formats:
            print(f"    {line}", flush=True)
    return EXIT_OK


def run_info(args: argparse.Namespace) -> int:
    import json

    from ..jobs.info import info_lines, machine_info

    info = machine_info()
    print(json.dumps(info) if args.json else "\n".join(info_lines(info)), flush=True)
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:
    if args.command in ("cameras", "info"):  # need no model
        return run_cameras(args) if args.command == "cameras" else run_info(args)
    # 1. Every check that needs no model: bad input is refused in well under a second.
    plan = make_plan(args)
    if plan.cluster is not None:  # the workers load the model; this process needs no TensorFlow
        return run_video_on_ray(args, plan)
    if args.command == "video":
        from ..jobs.video_job import report_if_all_complete

        if report_if_all_complete(args.inputs, args.output, plan.options):  # --resume, nothing left
            return EXIT_OK
    # 2. TensorFlow, quietly, before anything imports Keras (not for an exported .tflite model,
    #    which LiteRT runs); then the model and its explainer.
    spec = EngineSpec.from_args(args)
    log.info("loading the model %s (%s)", spec.model, "TensorFlow" if spec.needs_tensorflow else "LiteRT")
    if spec.needs_tensorflow:
        from ..tf_runtime import import_tensorflow

        import_tensorflow(verbose=args.debug)
    # Keras and TensorFlow print some news on stdout ("Downloading data from ..."): stdout is the
    # command's own (JSON with --json), so anything said while the engine is built goes to stderr.
    with contextlib.redirect_stdout(sys.stderr):
        cam = spec.build()
    resolve_classes(plan, cam.model.labels)
    # 3. The command itself.
    return COMMANDS[args.command](args, plan, cam)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; its exit status (0, 1, 2, 3, 130, 143)."""
    try:
        code = _main(argv)
        if threading.current_thread() is threading.main_thread():
            # The work is done and its status decided. A signal from now on (a second Ctrl-C while
            # TensorFlow's or Ray's threads wind down) must not kill the process with -2/-15: Python
            # puts the default handlers back while it finalizes, so the signals are ignored instead.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
    except KeyboardInterrupt as exc:  # a signal between the command's end and the lines above
        _stopped(isinstance(exc, Terminated))
    return code


def _main(argv: Sequence[str] | None) -> int:
    argv = join_dash_values(list(sys.argv[1:] if argv is None else argv))
    debug = False
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)  # the stream loops install their own, gentler ones
        signal.signal(signal.SIGINT, _interrupt)
    try:
        args = build_parser().parse_args(argv)
        debug = args.debug
        logging.basicConfig(
            level=logging.DEBUG if args.debug else logging.INFO if args.verbose else logging.WARNING,
            format="%(name)s: %(levelname)s: %(message)s",
        )
        if args.command is None:
            build_parser().print_help(sys.stderr)
            return EXIT_USER_ERROR
        from ..tf_runtime import quiet_opencv

        quiet_opencv(verbose=args.debug)  # before cv2 does anything
        return _run(args)
    except (StreamCamError, ConnectionError) as exc:
        if debug:
            raise
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt as exc:
        _stopped(isinstance(exc, Terminated))
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, no traceback
        if _received:  # a signal surfaced as another exception (TensorFlow's lazy import wraps it)
            _stopped(_received[-1] == signal.SIGTERM)
        if debug:
            raise
        print(f"{PROG}: internal error: {type(exc).__name__}: {exc} (run with --debug for details)",
              file=sys.stderr)
        return EXIT_INTERNAL_ERROR


if __name__ == "__main__":
    sys.exit(main())
