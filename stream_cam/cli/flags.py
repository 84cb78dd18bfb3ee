"""Every flag of every command, written once: its names, which commands take it, its group in the
help, its type/range (one of the shared checks), default and help, and whether an exported
``.tflite`` file fixes it. The parser (:mod:`.parser`) is built from this table, and the
``.tflite`` refusal (:mod:`.plan`) reads it."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from .. import defaults
from ..checks import check_alpha, check_count, check_seconds, check_smooth
from ..jobs.ray_cluster import check_gpus_per_worker
from ..engine.device import DEFAULT_DEVICE, check_gpu_memory, parse_device
from ..models.precision import PRECISIONS
from ..engine.motion import METHODS as MOTION_METHODS
from ..engine.registry import DEFAULT_METHOD, DEFAULT_RUNTIME, DEFAULT_SCORE_CHANNELS, METHOD_NAMES, RUNTIMES
from ..errors import InputError
from ..engine.faithfulness import DEFAULT_STEPS
from ..jobs.chunks import DEFAULT_CHUNK
from ..jobs.evaluate import DEFAULT_EVERY, MAX_DRAWS, MAX_EVERY, MAX_STEPS, RANDOM_DRAWS
from ..jobs.image import MAX_EXPLAIN_TOP
from ..jobs.options import DEFAULT_TOP_K, MAX_TOP_K
from ..jobs.video import DEFAULT_BATCH, MAX_BATCH
from ..jobs.export import FORMATS as EXPORT_FORMATS, PRECISIONS as EXPORT_PRECISIONS
from ..models.preprocessing import SCALINGS
from ..models.registry import DEFAULT_MODEL, MODEL_NAMES
from ..sources.cameras import BACKENDS as CAMERA_BACKENDS

COMMANDS = ("image", "live", "video", "demo", "evaluate", "export", "cameras", "info")
EXPLAINING = frozenset({"image", "live", "video", "demo"})  # the commands that draw heatmaps
MODEL_USERS = EXPLAINING | {"evaluate", "export"}
REAL_TIME = frozenset({"live", "demo"})
STREAMING = frozenset({"live", "video", "demo"})

# The help's groups, in the order they are shown after a command's own flags.
GROUPS = {
    "cluster": "Ray cluster", "camera": "camera mode (cameras only; once for every camera, or once per --source)",
    "realtime": "real time", "kiosk": "kiosk", "serve": "browser view", "stream": "stream", "model": "model",
    "render": "explanation",
}


def check_type(check: Callable[..., object], *args: object) -> Callable[[str], object]:
    """An argparse type from one of the shared checks (so the CLI and the jobs say the same)."""
    def parse(text: str) -> object:
        try:
            return check(text, *args)
        except InputError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def count(limit: int, flag: str) -> Callable[[str], object]:
    return check_type(check_count, limit, flag)


@dataclass(frozen=True)
class Flag:
    """One flag (or positional), as argparse is given it, for the commands in ``on``."""

    names: tuple[str, ...]
    on: frozenset[str]
    group: str = ""  # a key of GROUPS; "" = the command's own flags
    fixed_by_tflite: bool = False  # an exported file carries it: giving it with a .tflite model is refused
    options: Mapping[str, Any] = field(default_factory=dict)  # add_argument's keywords
    per_command: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # keywords that differ by command

    def keywords(self, command: str) -> dict[str, Any]:
        return {**self.options, **self.per_command.get(command, {})}

    @property
    def dest(self) -> str:
        return self.options.get("dest") or self.names[-1].lstrip("-").replace("-", "_")


def flag(*names: str, on: frozenset[str] | set[str], group: str = "", fixed_by_tflite: bool = False,
         per_command: Mapping[str, Mapping[str, Any]] | None = None, **options: Any) -> Flag:
    return Flag(names, frozenset(on), group, fixed_by_tflite, options, per_command or {})


OVERWRITE_HELP = "replace existing output files (never done otherwise)"

FLAGS: tuple[Flag, ...] = (
    # -- each command's own ---------------------------------------------------------------------
    flag("paths", on={"image"}, nargs="*", metavar="PATH", default=["skimage:chelsea"],
         help="image files, folders of them, or skimage:NAME (default: skimage:chelsea)"),
    flag("inputs", on={"video"}, nargs="+", metavar="IN", help="video files"),
    flag("paths", on={"evaluate"}, nargs="*", metavar="PATH", default=["skimage:chelsea", "skimage:coffee"],
         help="images, folders, videos or skimage:NAME (default: skimage:chelsea skimage:coffee)"),
    flag("-o", "--output", on={"image", "video", "demo", "export"}, type=Path, per_command={
        "image": {"help": "output file (one overlay) or folder (default: current folder)"},
        "video": {"required": True, "help": "output file for one input, or a folder for several"},
        "demo": {"metavar": "OUT.mp4", "help": "where to write the video (default: stream_cam_demo.mp4, never "
                                               "overwriting)"},
        "export": {"required": True, "metavar": "FILE.tflite",
                   "help": "the file to write (a new folder for --format savedmodel)"}}),
    flag("--explain-top", on={"image"}, type=count(MAX_EXPLAIN_TOP, "--explain-top"), default=1,
         help="without --class: explain the N most likely classes (default 1)"),
    flag("--json", on={"image", "evaluate", "cameras", "info"}, action="store_true", per_command={
        "image": {"help": "print one JSON object per image on stdout"},
        "evaluate": {"help": "one JSON object per method on stdout"},
        "cameras": {"help": "a JSON list on stdout"}, "info": {"help": "one JSON object on stdout"}}),
    flag("--source", on={"live"}, dest="sources", action="append", metavar="SOURCE",
         help="camera index, /dev/videoN, rtsp:// or http:// URL, or a video file played at its own speed "
              "(default: camera 0); repeat for up to 8 sources, shown as a mosaic (Tab selects)"),
    flag("--loop", on={"live"}, action="store_true", help="start a file again at its end"),
    flag("--record", on={"live"}, type=Path, metavar="OUT.mp4", help="record the annotated frames"),
    flag("--no-window", on=REAL_TIME, dest="window", action="store_false", per_command={
        "live": {"help": "run without a window"}, "demo": {"help": "write the video, show nothing"}}),
    flag("--fullscreen", on={"live"}, action="store_true", help="show the window full screen (f toggles it)"),
    flag("--max-frames", on={"live"}, type=count(10**9, "--max-frames"), help="stop after this many frames"),
    flag("--seconds-per-scene", on={"demo"}, type=check_type(check_seconds, "--seconds-per-scene"), default=3.0,
         help=argparse.SUPPRESS),
    flag("--batch", on={"video"}, type=count(MAX_BATCH, "--batch"), default=DEFAULT_BATCH,
         help=f"frames per engine call (default {DEFAULT_BATCH})"),
    flag("--no-hud", on={"video"}, dest="hud", action="store_false", help="heatmap only, no text"),
    flag("--results", on={"video"}, type=Path, metavar="FILE.parquet",
         help="one row per frame (video, frame, time, top-k, explained class, peak, stability) as a Parquet table"),
    flag("--resume", on={"video"}, action="store_true",
         help="skip inputs whose outputs are complete; redo half-written ones"),
    flag("--method", on={"evaluate"}, dest="methods", choices=(*METHOD_NAMES, "all"), action="append",
         help="method to score; repeat, or 'all' (default: gradcam)"),
    flag("--plot", on={"evaluate"}, type=Path, metavar="CURVES.png", help="draw the deletion and insertion curves"),
    flag("--steps", on={"evaluate"}, type=count(MAX_STEPS, "--steps"), default=DEFAULT_STEPS,
         help=f"steps of each curve (default {DEFAULT_STEPS})"),
    flag("--every", on={"evaluate"}, type=count(MAX_EVERY, "--every"), default=DEFAULT_EVERY,
         help=f"videos: score every Nth frame (default {DEFAULT_EVERY})"),
    flag("--per-frame", on={"evaluate"}, type=Path, metavar="FILE.jsonl",
         help="write every frame's scores, one JSON line per frame and method (find where a map fails)"),
    flag("--draws", on={"evaluate"}, type=count(MAX_DRAWS, "--draws"), default=RANDOM_DRAWS, metavar="N",
         help=f"random maps per frame whose mean is the random baseline (default {RANDOM_DRAWS})"),
    flag("--road", on={"evaluate"}, action="store_true",
         help="also ROAD (removed pixels imputed from their neighbours, not black): MoRF and LeRF curves with "
              "their own verdict; about 1.4 s more per map and frame on 2 cores"),
    flag("--format", on={"export"}, choices=EXPORT_FORMATS, default="tflite",
         help="tflite (LiteRT, default) or a TensorFlow SavedModel"),
    flag("--precision", on={"export"}, choices=EXPORT_PRECISIONS, default="f32",
         help="f16 halves the file; the heatmaps move by about 1e-2 (see README)"),
    flag("--overwrite", on=MODEL_USERS, action="store_true", help=OVERWRITE_HELP),
    flag("--smooth", on=STREAMING | {"evaluate"}, group="stream", type=check_type(check_smooth, "--smooth"),
         per_command={
             "live": {"default": 0.5}, "demo": {"default": 0.5}, "video": {"default": 0.0},
             "evaluate": {"default": 0.5, "help": "videos: report stability without and with this smoothing "
                                                  "(default 0.5)"}},
         help="heatmap smoothing across frames, 0 (off) to <1 (default %(default)s); resets on scene cuts and "
              "class changes"),
    # -- Ray ------------------------------------------------------------------------------------
    flag("--ray", on={"video"}, group="cluster", nargs="?", const="local", metavar="ADDRESS",
         help="run on Ray: alone, a local Ray cluster on this machine's cores; with HOST:PORT (as printed by "
              "'ray start --head') or 'auto', an existing cluster"),
    flag("--workers", on={"video"}, group="cluster", type=count(100_000, "--workers"),
         help="--ray: engine workers (default: one per CPU of the cluster)"),
    flag("--gpus-per-worker", on={"video"}, group="cluster", type=check_type(check_gpus_per_worker), metavar="F",
         help="--ray: each worker an actor with F GPUs (fractions share one, e.g. 0.5) running the engine there"),
    flag("--chunk", on={"video"}, group="cluster", type=count(10**7, "--chunk"),
         help=f"--ray: frames per chunk of a video (default {DEFAULT_CHUNK}, more when --smooth needs a longer "
              "warm-up)"),
    # -- camera mode ----------------------------------------------------------------------------
    flag("--width", on={"live"}, group="camera", type=int, action="append", metavar="W",
         help="frame width to ask the camera for"),
    flag("--height", on={"live"}, group="camera", type=int, action="append", metavar="H",
         help="frame height to ask for"),
    flag("--fps", on={"live"}, group="camera", type=float, action="append", metavar="F", help="frame rate to ask for"),
    flag("--fourcc", on={"live"}, group="camera", action="append", metavar="CODE",
         help="pixel format, e.g. MJPG (many USB webcams give 1080p at 5 fps unless MJPG is asked)"),
    flag("--backend", on={"live"}, group="camera", action="append", choices=tuple(CAMERA_BACKENDS),
         help="OpenCV's capture backend (default: OpenCV's choice)"),
    # -- real time ------------------------------------------------------------------------------
    flag("--sync", on=REAL_TIME, group="realtime", action="store_true",
         help="show each frame only with its own heatmap (the display waits for the model); by default every "
              "frame is shown at the source's rate with the newest heatmap"),
    flag("--trust", on=REAL_TIME, group="realtime", nargs="?", const=10, type=count(10_000, "--trust"),
         metavar="N", help="every N frames (default 10), how much of the class's probability survives when only "
                           "the hottest 20%% of the frame is shown: a gauge on the HUD, 'trust' in the log"),
    flag("--motion", on=REAL_TIME, group="realtime", choices=MOTION_METHODS, default=defaults.MOTION,
         help="move a heatmap computed on an older frame along the motion since: shift (one global shift), flow "
              f"(dense optical flow) or off (default {defaults.MOTION})"),
    # -- kiosk ----------------------------------------------------------------------------------
    flag("--kiosk", on=REAL_TIME, group="kiosk", action="store_true",
         help="unattended: fullscreen, large HUD, colour legend, loops and reconnects; only Esc pressed twice "
              "(or SIGTERM) ends it"),
    flag("--cycle", on=REAL_TIME, group="kiosk", type=check_type(check_seconds, "--cycle"), metavar="SECONDS",
         help="cycle the explained class through the top-k every SECONDS"),
    # -- browser view ---------------------------------------------------------------------------
    flag("--serve", on=STREAMING, group="serve", metavar="[HOST:]PORT",
         help="serve a live page at http://HOST:PORT/ (host 127.0.0.1 unless given)"),
    flag("--token", on=STREAMING, group="serve",
         help="required when serving beyond loopback; viewers add ?token=... (shown by ps: prefer --token-file "
              "or STREAM_CAM_TOKEN)"),
    flag("--token-file", on=STREAMING, group="serve", type=Path, metavar="FILE",
         help="read the token from the first line of FILE (or set the STREAM_CAM_TOKEN variable)"),
    flag("--allow-host", on=STREAMING, group="serve", action="append", default=[], metavar="NAME",
         help="also answer requests addressed to host NAME (localhost and IP addresses always are; other names "
              "are refused, against DNS rebinding); repeat for several"),
    # -- stream ---------------------------------------------------------------------------------
    flag("--log", on=STREAMING, group="stream", type=Path, metavar="FILE.jsonl",
         help="write one JSON line per frame"),
    flag("--codec", on=STREAMING, group="stream", default="mp4v",
         help="mp4v (default), mjpg, xvid (.avi), or h264 (browser-playable, needs PyAV)"),
    # -- model ----------------------------------------------------------------------------------
    flag("--model", on=MODEL_USERS, group="model", default=DEFAULT_MODEL,
         help=f"{', '.join(MODEL_NAMES)}, a .keras/.h5 file, or a .tflite file made by 'stream-cam export' (run by "
              f"LiteRT, no TensorFlow) (default: {DEFAULT_MODEL}, offline)"),
    flag("--layer", on=MODEL_USERS, group="model", fixed_by_tflite=True,
         help="target layer name (default: last 4-D layer before pooling)"),
    flag("--weights", on=MODEL_USERS, group="model", fixed_by_tflite=True, default="imagenet",
         help="Keras applications: 'imagenet' (downloaded by Keras), 'random', or a weights file"),
    flag("--preprocess", on=MODEL_USERS, group="model", fixed_by_tflite=True,
         help=f"input scaling: {', '.join(SCALINGS)} (default: the model's own)"),
    flag("--labels", on=MODEL_USERS, group="model", fixed_by_tflite=True, type=Path,
         help="label file: one name per line, or JSON"),
    flag("--method", on=EXPLAINING | {"export"}, group="model", choices=METHOD_NAMES,
         help=f"the CAM method (default {DEFAULT_METHOD}; a .tflite file's own); in the window, e switches it live"),
    flag("--score-channels", on=MODEL_USERS, group="model", type=count(100_000, "--score-channels"),
         default=DEFAULT_SCORE_CHANNELS, metavar="N",
         help=f"scorecam: use the N channels of highest variance (default {DEFAULT_SCORE_CHANNELS})"),
    flag("--xla", on=MODEL_USERS, group="model", action="store_true",
         help="compile with XLA (slower on CPU, maybe faster on GPU)"),
    flag("--runtime", on=EXPLAINING | {"evaluate"}, group="model", choices=RUNTIMES, default=DEFAULT_RUNTIME,
         help="what runs the explainer: auto (default: LiteRT on a CPU when the model and method allow, converted "
              "once and cached; else TensorFlow), tensorflow, or litert"),
    flag("--device", on=MODEL_USERS, group="model", type=check_type(parse_device), default=DEFAULT_DEVICE,
         metavar="auto|cpu|gpu|gpu:N",
         help="where TensorFlow runs the engine: auto (default: the first GPU it sees, else the CPU), cpu, gpu, or "
              "gpu:N; on a GPU the engine is TensorFlow's, on a CPU LiteRT's by default (--runtime)"),
    flag("--mixed-precision", on=EXPLAINING | {"evaluate"}, group="model", choices=PRECISIONS, metavar="float16|bfloat16",
         help="compute the model's forward pass in float16 (a GPU's tensor cores) or bfloat16; the CAM's gradients, "
              "weights and map stay float32 (default: float32 throughout; on a CPU both are slower)"),
    flag("--gpu-memory", on=MODEL_USERS, group="model", type=check_type(check_gpu_memory), metavar="MB",
         help="cap the GPU memory TensorFlow may take (default: it grows as needed, never all at once)"),
    # -- explanation ----------------------------------------------------------------------------
    flag("--class", on=EXPLAINING, group="render", dest="classes", action="append", default=[],
         metavar="NAME_OR_INDEX", help="class to explain, e.g. 285 or 'Egyptian cat'; image and live take several (repeat the flag: "
              "image writes one overlay each, live cycles with c), a video file one"),
    flag("--top-k", on=EXPLAINING, group="render", type=count(MAX_TOP_K, "--top-k"), default=DEFAULT_TOP_K,
         help=f"classes to report (default {DEFAULT_TOP_K})"),
    flag("--alpha", on=EXPLAINING, group="render", type=check_type(check_alpha, "--alpha"), default=defaults.ALPHA,
         help=f"heatmap weight, 0..1 (default {defaults.ALPHA})"),
    flag("--colormap", on=EXPLAINING, group="render", default=defaults.COLORMAP,
         help=f"any matplotlib colormap (default {defaults.COLORMAP})"),
    flag("--render", on=EXPLAINING, group="render", choices=defaults.RENDERS, default=defaults.RENDER,
         help="where the frame is resized, explained, coloured and blended: device (one compiled TensorFlow call "
              "returns the drawn frame; the HUD's text is drawn on the host), host (OpenCV), or auto (default: "
              "device on a GPU, host on a CPU, where it measured faster)"),
)


def add_flags(parser: argparse.ArgumentParser, command: str) -> None:
    """Give ``parser`` every flag ``command`` takes: its own first, then the groups in GROUPS' order."""
    mine = [f for f in FLAGS if command in f.on]
    for f in mine:
        if not f.group:
            parser.add_argument(*f.names, **f.keywords(command))
    for key, title in GROUPS.items():
        members = [f for f in mine if f.group == key]
        if members:
            group = parser.add_argument_group(title)
            for f in members:
                group.add_argument(*f.names, **f.keywords(command))


def fixed_by_tflite_given(args: argparse.Namespace) -> list[str]:
    """The flags given that an exported .tflite file fixes (a value other than the default)."""
    given = []
    for f in FLAGS:
        if f.fixed_by_tflite and args.command in f.on:
            if getattr(args, f.dest, None) != f.keywords(args.command).get("default"):
                given.append(f.names[-1])
    return given
