"""The ``stream-cam`` argument parser: commands, flags and their help. No checks that need files."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Callable

from ..checks import check_alpha, check_count, check_seconds, check_smooth
from ..engine.motion import METHODS as MOTION_METHODS
from ..engine.registry import DEFAULT_METHOD, DEFAULT_SCORE_CHANNELS, METHOD_NAMES
from ..errors import InputError
from ..jobs.chunks import DEFAULT_CHUNK
from ..jobs.export import FORMATS as EXPORT_FORMATS, PRECISIONS as EXPORT_PRECISIONS
from ..keys import keys_epilog
from ..models.preprocessing import SCALINGS
from ..models.registry import DEFAULT_MODEL, MODEL_NAMES
from ..sources.cameras import BACKENDS as CAMERA_BACKENDS

PROG = "stream-cam"


class OneLineParser(argparse.ArgumentParser):
    """argparse, but an error is one line naming the command and how to get help, and a misspelt
    flag gets a did-you-mean (``--bacth`` -> ``--batch``)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        command = self.prog.removeprefix(PROG).strip()  # the CLI adds "stream-cam: error: " itself
        raise InputError(f"{command + ': ' if command else ''}{message} (see '{self.prog} --help')")

    def parse_args(self, args=None, namespace=None):
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            self.error(unrecognized(extras, self._flags_of(parsed)))
        return parsed

    def _flags_of(self, parsed: argparse.Namespace) -> list[str]:
        """The flags of this parser and of the command that was chosen."""
        flags = list(self._option_string_actions)
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                command = action.choices.get(getattr(parsed, "command", None) or "")
                if command is not None:
                    flags += list(command._option_string_actions)
        return flags


def unrecognized(extras: list[str], flags: list[str]) -> str:
    """'unrecognized arguments: --bacth 4; did you mean --batch?'"""
    import difflib

    message = f"unrecognized arguments: {' '.join(extras)[:200]}"
    for extra in extras:
        if extra.startswith("--"):
            close = difflib.get_close_matches(extra.split("=")[0], [f for f in flags if f.startswith("--")], n=2)
            if close:
                return f"{message}; did you mean {' or '.join(close)}?"
    return message


def _type(check: Callable[..., object], *args: object) -> Callable[[str], object]:
    """An argparse type from one of the shared checks (so the CLI and the jobs say the same)."""
    def parse(text: str) -> object:
        try:
            return check(text, *args)
        except InputError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def _common(parser: argparse.ArgumentParser, top: bool) -> None:
    # On the top parser and again on each command, so `stream-cam image --debug` works too.
    default = False if top else argparse.SUPPRESS
    parser.add_argument("--debug", action="store_true", default=default,
                        help="show tracebacks and TensorFlow's own output")
    parser.add_argument("-v", "--verbose", action="store_true", default=default, help="log what happens")


def _add_model_options(parser: argparse.ArgumentParser, one_method: bool = True) -> None:
    group = parser.add_argument_group("model")
    group.add_argument("--model", default=DEFAULT_MODEL,
                       help=f"{', '.join(MODEL_NAMES)}, a .keras/.h5 file, or a .tflite file made by 'stream-cam "
                            f"export' (run by LiteRT, no TensorFlow) (default: {DEFAULT_MODEL}, offline)")
    group.add_argument("--layer", help="target layer name (default: last 4-D layer before pooling)")
    group.add_argument("--weights", default="imagenet",
                       help="Keras applications: 'imagenet' (downloaded by Keras), 'random', or a weights file")
    group.add_argument("--preprocess", help=f"input scaling: {', '.join(SCALINGS)} (default: the model's own)")
    group.add_argument("--labels", type=Path, help="label file: one name per line, or JSON")
    if one_method:
        group.add_argument("--method", choices=METHOD_NAMES,
                           help=f"the CAM method (default {DEFAULT_METHOD}; a .tflite file's own); in the window, "
                                "e switches it live")
    group.add_argument("--score-channels", type=_type(check_count, 100_000, "--score-channels"),
                       default=DEFAULT_SCORE_CHANNELS, metavar="N",
                       help=f"scorecam: use the N channels of highest variance (default {DEFAULT_SCORE_CHANNELS})")
    group.add_argument("--xla", action="store_true", help="compile with XLA (slower on CPU, maybe faster on GPU)")


def _add_render_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("explanation")
    group.add_argument("--class", dest="classes", action="append", default=[], metavar="NAME_OR_INDEX",
                       help="class to explain, e.g. 285 or 'Egyptian cat'; repeat for several")
    group.add_argument("--top-k", type=_type(check_count, 1000, "--top-k"), default=5,
                       help="classes to report (default 5)")
    group.add_argument("--alpha", type=_type(check_alpha, "--alpha"), default=0.4,
                       help="heatmap weight, 0..1 (default 0.4)")
    group.add_argument("--colormap", default="jet", help="any matplotlib colormap (default jet)")


def _add_stream_options(parser: argparse.ArgumentParser, smooth_default: float) -> None:
    group = parser.add_argument_group("stream")
    group.add_argument("--smooth", type=_type(check_smooth, "--smooth"), default=smooth_default,
                       help=f"heatmap smoothing across frames, 0 (off) to <1 (default {smooth_default}); "
                            "resets on scene cuts and class changes")
    group.add_argument("--log", type=Path, metavar="FILE.jsonl", help="write one JSON line per frame")
    group.add_argument("--codec", default="mp4v", help="mp4v (default), mjpg, xvid (.avi), or h264 "
                                                       "(browser-playable, needs PyAV)")
    group.add_argument("--overwrite", action="store_true", help="replace existing output files")


def _add_kiosk_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("kiosk")
    group.add_argument("--kiosk", action="store_true",
                       help="unattended: fullscreen, large HUD, colour legend, loops and reconnects; "
                            "only Esc pressed twice (or SIGTERM) ends it")
    group.add_argument("--cycle", type=_type(check_seconds, "--cycle"), metavar="SECONDS",
                       help="cycle the explained class through the top-k every SECONDS")


def _add_realtime_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("real time")
    group.add_argument("--sync", action="store_true",
                       help="show each frame only with its own heatmap (the display waits for the model); "
                            "by default every frame is shown at the source's rate with the newest heatmap")
    group.add_argument("--trust", nargs="?", const=10, type=_type(check_count, 10_000, "--trust"), metavar="N",
                       help="every N frames (default 10), how much of the class's probability survives when only "
                            "the hottest 20%% of the frame is shown: a gauge on the HUD, 'trust' in the log")
    group.add_argument("--motion", choices=MOTION_METHODS, default="shift",
                       help="move a heatmap computed on an older frame along the motion since: one global "
                            "shift (default), dense optical flow, or off")


def _add_camera_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("camera mode (cameras only; once for every camera, or once per --source)")
    group.add_argument("--width", type=int, action="append", metavar="W", help="frame width to ask the camera for")
    group.add_argument("--height", type=int, action="append", metavar="H", help="frame height to ask for")
    group.add_argument("--fps", type=float, action="append", metavar="F", help="frame rate to ask for")
    group.add_argument("--fourcc", action="append", metavar="CODE",
                       help="pixel format, e.g. MJPG (many USB webcams give 1080p at 5 fps unless MJPG is asked)")
    group.add_argument("--backend", action="append", choices=tuple(CAMERA_BACKENDS),
                       help="OpenCV's capture backend (default: OpenCV's choice)")


def _add_serve_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("browser view")
    group.add_argument("--serve", metavar="[HOST:]PORT",
                       help="serve a live page at http://HOST:PORT/ (host 127.0.0.1 unless given)")
    group.add_argument("--token", help="required when serving beyond loopback; viewers add ?token=... "
                                       "(shown by ps: prefer --token-file or STREAM_CAM_TOKEN)")
    group.add_argument("--token-file", type=Path, metavar="FILE",
                       help="read the token from the first line of FILE (or set the STREAM_CAM_TOKEN variable)")
    group.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                       help="also answer requests addressed to host NAME (localhost and IP addresses always "
                            "are; other names are refused, against DNS rebinding); repeat for several")


def build_parser() -> OneLineParser:
    from .. import __version__

    parser = OneLineParser(prog=PROG, description="Real-time Grad-CAM explanations for image classifiers.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    _common(parser, top=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    keys: dict[str, Any] = dict(epilog=keys_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)

    image = commands.add_parser(
        "image", help="explain still images and save overlays",
        description="Explain images: print the top classes and save one Grad-CAM overlay per explained class. "
                    "PATH may be a file or a built-in photo such as skimage:chelsea.")
    image.add_argument("paths", nargs="*", metavar="PATH", default=["skimage:chelsea"],
                       help="image files or skimage:NAME (default: skimage:chelsea)")
    image.add_argument("-o", "--output", type=Path,
                       help="output file (one overlay) or folder (default: current folder)")
    image.add_argument("--explain-top", type=_type(check_count, 20, "--explain-top"), default=1,
                       help="without --class: explain the N most likely classes (default 1)")
    image.add_argument("--json", action="store_true", help="print one JSON object per image on stdout")
    image.add_argument("--overwrite", action="store_true", help="replace existing output files")
    _add_model_options(image)
    _add_render_options(image)

    live = commands.add_parser(
        "live", help="explain a webcam, stream or file in real time",
        description="Live Grad-CAM: camera, stream or file -> heatmap overlay and HUD in a window, "
                    "optionally recorded.", **keys)
    live.add_argument("--source", dest="sources", action="append", metavar="SOURCE",
                      help="camera index, /dev/videoN, rtsp:// or http:// URL, or a video file played at its own "
                           "speed (default: camera 0); repeat for up to 8 sources, shown as a mosaic (Tab selects)")
    live.add_argument("--loop", action="store_true", help="start a file again at its end")
    live.add_argument("--record", type=Path, metavar="OUT.mp4", help="record the annotated frames")
    live.add_argument("--no-window", dest="window", action="store_false", help="run without a window")
    live.add_argument("--fullscreen", action="store_true")
    live.add_argument("--max-frames", type=_type(check_count, 10**9, "--max-frames"),
                      help="stop after this many frames")
    _add_camera_options(live)
    _add_realtime_options(live)
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
    video.add_argument("--batch", type=_type(check_count, 256, "--batch"), default=8,
                       help="frames per engine call (default 8)")
    video.add_argument("--no-hud", dest="hud", action="store_false", help="heatmap only, no text")
    video.add_argument("--results", type=Path, metavar="FILE.parquet",
                       help="one row per frame (video, frame, time, top-k, explained class, peak, stability) "
                            "as a Parquet table")
    video.add_argument("--resume", action="store_true",
                       help="skip inputs whose outputs are complete; redo half-written ones")
    cluster = video.add_argument_group("Ray cluster")
    cluster.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                         help="run on Ray: alone, a local Ray cluster on this machine's cores; with HOST:PORT "
                              "(as printed by 'ray start --head') or 'auto', an existing cluster")
    cluster.add_argument("--workers", type=_type(check_count, 100_000, "--workers"),
                         help="--ray: engine workers (default: one per CPU of the cluster)")
    cluster.add_argument("--chunk", type=_type(check_count, 10**7, "--chunk"),
                         help=f"--ray: frames per chunk of a video (default {DEFAULT_CHUNK}, more when --smooth "
                              "needs a longer warm-up)")
    _add_serve_options(video)
    _add_stream_options(video, smooth_default=0.0)
    _add_model_options(video)
    _add_render_options(video)

    demo = commands.add_parser(
        "demo", help="the built-in demo: no camera, no files",
        description="Explain a built-in clip made from scikit-image's photos. Shows a window when a display "
                    "exists; otherwise writes the annotated video and says where.", **keys)
    demo.add_argument("--no-window", dest="window", action="store_false", help="write the video, show nothing")
    demo.add_argument("-o", "--output", type=Path, metavar="OUT.mp4",
                      help="where to write the video (default: stream_cam_demo.mp4, never overwriting)")
    demo.add_argument("--seconds-per-scene", type=_type(check_seconds, "--seconds-per-scene"), default=3.0,
                      help=argparse.SUPPRESS)
    _add_realtime_options(demo)
    _add_kiosk_options(demo)
    _add_serve_options(demo)
    _add_stream_options(demo, smooth_default=0.5)
    _add_model_options(demo)
    _add_render_options(demo)

    evaluate = commands.add_parser(
        "evaluate", help="score how faithful each method's heatmaps are",
        description="Faithfulness of the heatmaps on images, folders, skimage:NAME photos and videos (every Nth "
                    "frame): deletion and insertion AUC, Average Drop % and Increase in Confidence %, beside a "
                    "random and a centred map.")
    evaluate.add_argument("paths", nargs="*", metavar="PATH", default=["skimage:chelsea", "skimage:coffee"],
                          help="images, folders, videos or skimage:NAME (default: skimage:chelsea skimage:coffee)")
    evaluate.add_argument("--method", dest="methods", choices=(*METHOD_NAMES, "all"), action="append",
                          help="method to score; repeat, or 'all' (default: gradcam)")
    evaluate.add_argument("--json", action="store_true", help="one JSON object per method on stdout")
    evaluate.add_argument("--plot", type=Path, metavar="CURVES.png", help="draw the deletion and insertion curves")
    evaluate.add_argument("--steps", type=_type(check_count, 1000, "--steps"), default=20,
                          help="steps of each curve (default 20)")
    evaluate.add_argument("--every", type=_type(check_count, 100_000, "--every"), default=30,
                          help="videos: score every Nth frame (default 30)")
    evaluate.add_argument("--overwrite", action="store_true", help="replace an existing --plot file")
    evaluate.add_argument("--smooth", type=_type(check_smooth, "--smooth"), default=0.5,
                          help="videos: report stability without and with this smoothing (default 0.5)")
    _add_model_options(evaluate, one_method=False)
    evaluate.set_defaults(method="gradcam", classes=[])

    export = commands.add_parser(
        "export", help="export the explainer for LiteRT (kiosks without TensorFlow)",
        description="Write a model's explainer as one file: uint8 frame in, probabilities, class and heatmap out. "
                    "A .tflite file runs on LiteRT (pip install ai-edge-litert) and works as --model for every "
                    "command, without TensorFlow. Exportable: gradcam, gradcam++, xgradcam, layercam, hirescam, "
                    "scorecam, on models whose head after the target layer is pooling and dense layers.")
    export.add_argument("-o", "--output", type=Path, required=True, metavar="FILE.tflite",
                        help="the file to write (a new folder for --format savedmodel)")
    export.add_argument("--format", choices=EXPORT_FORMATS, default="tflite",
                        help="tflite (LiteRT, default) or a TensorFlow SavedModel")
    export.add_argument("--precision", choices=EXPORT_PRECISIONS, default="f32",
                        help="f16 halves the file; the heatmaps move by about 1e-2 (see README)")
    export.add_argument("--overwrite", action="store_true", help="replace an existing file")
    _add_model_options(export)
    export.set_defaults(classes=[])

    cameras = commands.add_parser("cameras", help="list the cameras this machine has",
                                  description="The cameras here: /dev/videoN with their names and, where v4l2-ctl "
                                              "can tell, their formats, sizes and rates (elsewhere: the indices "
                                              "that open). An empty list is a normal answer.")
    cameras.add_argument("--json", action="store_true", help="a JSON list on stdout")

    for command in (image, live, video, demo, evaluate, export, cameras):
        _common(command, top=False)
    return parser


def join_dash_values(argv: list[str]) -> list[str]:
    """``--preprocess -1..1`` as README writes it: argparse would take ``-1..1`` for an option."""
    out: list[str] = []
    for i, arg in enumerate(argv):
        if i > 0 and argv[i - 1] == "--preprocess" and arg.startswith("-") and out and out[-1] == "--preprocess":
            out[-1] = f"--preprocess={arg}"
            continue
        out.append(arg)
    return out
