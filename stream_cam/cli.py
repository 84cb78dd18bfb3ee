"""The ``stream-cam`` command line.

Every user-facing problem becomes ONE line on stderr and a non-zero exit; a
traceback only with ``--debug``. Heavy imports (TensorFlow) happen after the
arguments are checked, so ``--help`` and argument errors are instant.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Sequence

from .errors import InputError, StreamCamError

log = logging.getLogger("stream_cam")

PROG = "stream-cam"
EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 1
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143
EXIT_DAMAGED_INPUT = 3


class OneLineParser(argparse.ArgumentParser):
    """argparse, but an error is one line naming the command and how to get help."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise InputError(f"{self.prog}: {message} (see '{self.prog} --help')")


def _positive_int(upper: int) -> "callable":
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if not 1 <= value <= upper:
            raise argparse.ArgumentTypeError(f"expected a whole number from 1 to {upper}, got {value}")
        return value

    return parse


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    from .models.registry import DEFAULT_MODEL, MODEL_NAMES

    group = parser.add_argument_group("model")
    group.add_argument("--model", default=DEFAULT_MODEL,
                       help=f"{', '.join(MODEL_NAMES)}, or a .keras/.h5 file (default: {DEFAULT_MODEL}, offline)")
    group.add_argument("--layer", help="target layer name (default: last 4-D layer before pooling)")
    group.add_argument("--weights", default="imagenet",
                       help="Keras applications: 'imagenet' (downloaded by Keras), 'random', or a weights file")
    group.add_argument("--preprocess", help="input scaling: none, -1..1, 0..1, caffe, torch, lite "
                                            "(default: the model's own)")
    group.add_argument("--labels", type=Path, help="label file: one name per line, or JSON")
    group.add_argument("--method", choices=("gradcam", "gradcam++"), default="gradcam")
    group.add_argument("--xla", action="store_true", help="compile with XLA (slower on CPU, maybe faster on GPU)")


def _add_render_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("explanation")
    group.add_argument("--class", dest="classes", action="append", default=[], metavar="NAME_OR_INDEX",
                       help="class to explain, e.g. 285 or 'Egyptian cat'; repeat for several")
    group.add_argument("--top-k", type=_positive_int(1000), default=5, help="classes to report (default 5)")
    group.add_argument("--alpha", type=_alpha, default=0.4, help="heatmap weight, 0..1 (default 0.4)")
    group.add_argument("--colormap", default="jet", help="any matplotlib colormap (default jet)")


def _fraction(name: str, upper_open: bool = False) -> "callable":
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None
        if not (0.0 <= value < 1.0 if upper_open else 0.0 <= value <= 1.0):
            raise argparse.ArgumentTypeError(f"{name} must be from 0 to {'below ' if upper_open else ''}1, got {text}")
        return value

    return parse


def _add_stream_options(parser: argparse.ArgumentParser, smooth_default: float) -> None:
    group = parser.add_argument_group("stream")
    group.add_argument("--smooth", type=_fraction("--smooth", upper_open=True), default=smooth_default,
                       help=f"heatmap smoothing across frames, 0 (off) to <1 (default {smooth_default}); "
                            "resets on scene cuts and class changes")
    group.add_argument("--log", type=Path, metavar="FILE.jsonl", help="write one JSON line per frame")
    group.add_argument("--codec", default="mp4v", help="mp4v (default), mjpg, xvid (.avi), or h264 "
                                                       "(browser-playable, needs PyAV)")
    group.add_argument("--overwrite", action="store_true", help="replace existing output files")


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not 0 < value <= 86400:
        raise argparse.ArgumentTypeError(f"expected seconds above 0 (and at most a day), got {text}")
    return value


def _add_kiosk_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("kiosk")
    group.add_argument("--kiosk", action="store_true",
                       help="unattended: fullscreen, large HUD, colour legend, loops and reconnects; "
                            "only Esc pressed twice (or SIGTERM) ends it")
    group.add_argument("--cycle", type=_positive_seconds, metavar="SECONDS",
                       help="cycle the explained class through the top-k every SECONDS")


def _add_serve_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("browser view")
    group.add_argument("--serve", metavar="[HOST:]PORT",
                       help="serve a live page at http://HOST:PORT/ (host 127.0.0.1 unless given)")
    group.add_argument("--token", help="required when serving beyond loopback; viewers add ?token=...")


_alpha = _fraction("alpha")

KEYS_EPILOG = """window keys:
  q / Esc  quit                 space  pause
  c        cycle the explained class through the top-k;  1-5  explain the class at that rank
  + / -    more / less heatmap  m      next colormap
  s        save a PNG snapshot  r      start / stop recording
  h        hide / show the HUD  f      fullscreen
  ?        show the key list on screen"""


def build_parser() -> OneLineParser:
    parser = OneLineParser(prog=PROG, description="Real-time Grad-CAM explanations for image classifiers.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and TensorFlow's own output")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)

    image = commands.add_parser(
        "image", help="explain still images and save overlays",
        description="Explain images: print the top classes and save one Grad-CAM overlay per explained class. "
                    "PATH may be a file or a built-in photo such as skimage:chelsea.")
    image.add_argument("paths", nargs="*", metavar="PATH", default=["skimage:chelsea"],
                       help="image files or skimage:NAME (default: skimage:chelsea)")
    image.add_argument("-o", "--output", type=Path,
                       help="output file (one overlay) or folder (default: current folder)")
    image.add_argument("--explain-top", type=_positive_int(20), default=1,
                       help="without --class: explain the N most likely classes (default 1)")
    image.add_argument("--json", action="store_true", help="print one JSON object per image on stdout")
    image.add_argument("--overwrite", action="store_true", help="replace existing output files")
    _add_model_options(image)
    _add_render_options(image)

    live = commands.add_parser(
        "live", help="explain a webcam, stream or file in real time",
        description="Live Grad-CAM: camera, stream or file -> heatmap overlay and HUD in a window, "
                    "optionally recorded.", epilog=KEYS_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    live.add_argument("--source", default="0", help="camera index, /dev/videoN, rtsp:// or http:// URL, or a "
                                                    "video file played at its own speed (default: camera 0)")
    live.add_argument("--loop", action="store_true", help="start a file again at its end")
    live.add_argument("--record", type=Path, metavar="OUT.mp4", help="record the annotated frames")
    live.add_argument("--no-window", dest="window", action="store_false", help="run without a window")
    live.add_argument("--fullscreen", action="store_true")
    live.add_argument("--max-frames", type=_positive_int(10**9), help="stop after this many frames")
    _add_kiosk_options(live)
    _add_serve_options(live)
    _add_stream_options(live, smooth_default=0.5)
    _add_model_options(live)
    _add_render_options(live)

    video = commands.add_parser(
        "video", help="explain video files, every frame",
        description="Explain every frame of video files; the output has the input's frame count, size and fps.")
    video.add_argument("inputs", nargs="+", metavar="IN", help="video files")
    video.add_argument("-o", "--output", type=Path, required=True,
                       help="output file for one input, or a folder for several")
    video.add_argument("--batch", type=_positive_int(256), default=8, help="frames per engine call (default 8)")
    video.add_argument("--no-hud", dest="hud", action="store_false", help="heatmap only, no text")
    _add_serve_options(video)
    _add_stream_options(video, smooth_default=0.0)
    _add_model_options(video)
    _add_render_options(video)

    demo = commands.add_parser(
        "demo", help="the built-in demo: no camera, no files",
        description="Explain a built-in clip made from scikit-image's photos. Shows a window when a display "
                    "exists; otherwise writes the annotated video and says where.",
        epilog=KEYS_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    demo.add_argument("--no-window", dest="window", action="store_false", help="write the video, show nothing")
    demo.add_argument("-o", "--output", type=Path, metavar="OUT.mp4",
                      help="where to write the video (default: stream_cam_demo.mp4, never overwriting)")
    demo.add_argument("--seconds-per-scene", type=float, default=3.0, help=argparse.SUPPRESS)
    _add_kiosk_options(demo)
    _add_serve_options(demo)
    _add_stream_options(demo, smooth_default=0.5)
    _add_model_options(demo)
    _add_render_options(demo)
    return parser


def load_engine(args: argparse.Namespace):
    """Load the model and build the CAM engine (TensorFlow is imported by main)."""
    from .engine.gradcam import GradCAM, GradCAMPlusPlus
    from .models.loader import load_model

    weights = None if args.weights == "random" else args.weights
    model = load_model(args.model, layer=args.layer, weights=weights,
                       preprocessing=args.preprocess, labels=args.labels)
    method = GradCAMPlusPlus if args.method == "gradcam++" else GradCAM
    return method(model, jit_compile=args.xla)


def _check_render_options(args: argparse.Namespace) -> None:
    from .render.colormap import colormap_lut

    colormap_lut(args.colormap)  # unknown names fail here, before loading a model


def run_image(args: argparse.Namespace) -> int:
    from .jobs.image import ImageOptions, run_images
    from .models.labels import resolve_class

    _check_render_options(args)
    cam = load_engine(args)
    classes = [resolve_class(c, cam.model.labels) for c in args.classes]
    options = ImageOptions(
        classes=classes, explain_top=args.explain_top, top_k=args.top_k, alpha=args.alpha,
        colormap=args.colormap, output=args.output, overwrite=args.overwrite, as_json=args.json,
    )
    run_images(cam, args.paths, options)
    return 0


def _class_indices(args: argparse.Namespace, cam) -> list[int]:
    from .models.labels import resolve_class

    return [resolve_class(c, cam.model.labels) for c in args.classes]


def _serve_address(args: argparse.Namespace):
    """Parse and check --serve/--token before any work; None when not serving."""
    from .web.server import check_token, parse_address, probe_port

    if getattr(args, "serve", None) is None:
        if getattr(args, "token", None):
            raise InputError("--token goes with --serve")
        return None
    address = parse_address(args.serve)
    check_token(address, args.token)
    probe_port(address)  # a port in use fails now, not after loading the model
    return address


def _live_options(args: argparse.Namespace, cam, **overrides):
    from .jobs.live import LiveOptions

    values = dict(alpha=args.alpha, colormap=args.colormap, top_k=args.top_k, classes=_class_indices(args, cam),
                  smooth=args.smooth, log=args.log, codec=args.codec, overwrite=args.overwrite,
                  kiosk=args.kiosk, cycle=args.cycle, serve=_serve_address(args), token=args.token)
    values.update(overrides)
    return LiveOptions(**values)


def _check_stream_args(args: argparse.Namespace, record: Path | None) -> None:
    from .sinks.video import check_codec

    _check_render_options(args)
    if record is not None:
        check_codec(args.codec, record)


def run_live(args: argparse.Namespace) -> int:
    from .jobs.live import LiveRun

    _check_stream_args(args, args.record)
    _serve_address(args)
    cam = load_engine(args)
    options = _live_options(args, cam, source=args.source, loop=args.loop, record=args.record,
                            window=args.window, fullscreen=args.fullscreen, max_frames=args.max_frames)
    stats = LiveRun(cam, options).run()
    _report_live(stats)
    return 0


def _report_live(stats) -> None:
    print(f"{stats.shown} frames shown at {stats.fps:.1f} fps, {stats.dropped} stale frames dropped"
          + (f"; stopped by {stats.stopped_by}" if stats.stopped_by else ""), flush=True)
    for path, frames in stats.recordings:
        print(f"recorded {path} ({frames} frames)", flush=True)
    for path in stats.snapshots:
        print(f"saved {path}", flush=True)


def run_video(args: argparse.Namespace) -> int:
    from .jobs.video import VideoOptions, run_videos

    _check_stream_args(args, None)
    address = _serve_address(args)
    cam = load_engine(args)
    options = VideoOptions(batch=args.batch, smooth=args.smooth, alpha=args.alpha, colormap=args.colormap,
                           top_k=args.top_k, classes=_class_indices(args, cam), codec=args.codec,
                           overwrite=args.overwrite, log=args.log, hud=args.hud, serve=address, token=args.token)
    results = run_videos(cam, args.inputs, args.output, options)
    if len(results) < len(args.inputs) or any(r.interrupted for r in results):
        return EXIT_INTERRUPTED
    return EXIT_DAMAGED_INPUT if any(r.damaged for r in results) else 0


def run_demo(args: argparse.Namespace) -> int:
    from .jobs.live import LiveRun
    from .jobs.video import VideoOptions, process_video
    from .sinks.video import next_free_path
    from .sinks.window import display_available
    from .sources.demo import demo_reader

    output = args.output
    _check_stream_args(args, output)
    address = _serve_address(args)
    window = args.window and display_available()
    if output is None and (window or address is not None or args.kiosk):
        # Interactive: play the clip in real time, looping, in a window and/or the browser.
        cam = load_engine(args)
        options = _live_options(args, cam, source="demo", loop=True, window=window)
        stats = LiveRun(cam, options, lambda: demo_reader(args.seconds_per_scene)).run()
        _report_live(stats)
        return 0
    if output is None:
        output = next_free_path(Path("stream_cam_demo.mp4"))
        if args.window:
            print("no display found: writing the demo to a video file instead", flush=True)
    elif output.exists() and not args.overwrite:
        raise InputError(f"{output} already exists; pass --overwrite to replace it")
    cam = load_engine(args)
    options = VideoOptions(batch=8, smooth=args.smooth, alpha=args.alpha, colormap=args.colormap,
                           top_k=args.top_k, classes=_class_indices(args, cam), codec=args.codec,
                           overwrite=args.overwrite, log=args.log)
    result = process_video(cam, demo_reader(args.seconds_per_scene), output, options)
    print(f"wrote the demo video to {output.resolve()} ({result.frames} frames, {result.fps:.0f} fps)", flush=True)
    return 0


COMMANDS = {"image": run_image, "live": run_live, "video": run_video, "demo": run_demo}


class Terminated(KeyboardInterrupt):
    """SIGTERM outside the stream loops (loading, tracing): stop as Ctrl-C would."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)  # the stream loops install their own, gentler one
    try:
        args = build_parser().parse_args(argv)
        logging.basicConfig(
            level=logging.DEBUG if args.debug else logging.INFO if args.verbose else logging.WARNING,
            format="%(name)s: %(levelname)s: %(message)s",
        )
        if args.command is None:
            build_parser().print_help(sys.stderr)
            return EXIT_USER_ERROR
        from .tf_runtime import import_tensorflow, quiet_opencv

        quiet_opencv(verbose=args.debug)  # before cv2 is imported
        import_tensorflow(verbose=args.debug)  # first, before anything imports keras
        return COMMANDS[args.command](args)
    except StreamCamError as exc:
        if debug:
            raise
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except ConnectionError as exc:
        if debug:
            raise
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt as exc:
        terminated = isinstance(exc, Terminated)
        print(f"{PROG}: {'stopped by SIGTERM' if terminated else 'interrupted'}", file=sys.stderr)
        code = EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
        # An interrupt inside TensorFlow's import leaves CPython marked "killed by SIGINT", and
        # it would re-raise the signal at exit. Everything is already closed (finally blocks ran),
        # so leave with the status we mean.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, no traceback
        if debug:
            raise
        print(f"{PROG}: internal error: {type(exc).__name__}: {exc} (run with --debug for details)",
              file=sys.stderr)
        return EXIT_INTERNAL_ERROR


if __name__ == "__main__":
    sys.exit(main())
