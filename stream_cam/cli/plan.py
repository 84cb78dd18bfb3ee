"""Every check the CLI can make without the model, run FIRST, before TensorFlow is imported.

``make_plan(args)`` reads the files' headers and names, not their contents: it refuses bad input in
well under a second (see README, "Refused before the model loads") and returns what the run needs:
the options object of the command, the resolved classes, the browser view's address. Nothing is
created here; outputs and folders appear only once the run starts.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import defaults
from ..checks import installed
from ..engine.registry import CNN_METHODS, METHOD_INFO, METHOD_NAMES, TRANSFORMER_METHODS
from ..errors import InputError, ModelError
from ..jobs.image import ImageOptions, output_paths as image_output_paths
from ..jobs.live_options import LiveOptions
from ..jobs.video import VideoOptions, check_one_class
from ..jobs.video_job import output_paths as video_output_paths
from ..models.labels import read_label_file, resolve_class
from ..models.preprocessing import check_scaling
from ..models.registry import APPLICATIONS, MODEL_NAMES, builtin_labels, check_model_name
from ..models.tflite import is_tflite, read_description
from ..sinks.files import next_free_path
from ..sinks.video import check_codec
from ..sinks.window import display_available
from ..sources.images import expand_folders, read_image
from ..sources.cameras import CameraSettings
from ..sources.readers import check_source, is_camera, probe_source
from ..web.address import Address, check_token, parse_address, probe_port
from .flags import fixed_by_tflite_given

DEMO_OUTPUT = Path("stream_cam_demo.mp4")


@dataclass
class Plan:
    """What ``main`` needs after the checks: the command's options, and what is already resolved."""

    command: str
    options: Any  # ImageOptions, LiveOptions or VideoOptions
    labels: list[str] | None  # the class names, when known without loading the model
    class_specs: list[str]  # --class as given; resolved into options.classes once labels are known
    address: Address | None = None
    interactive: bool = False  # demo: window / browser / kiosk, played live
    output: Path | None = None  # demo written to a file: where
    cluster: Any = None  # video --ray: the RayOptions


def make_plan(args: argparse.Namespace) -> Plan:
    """Check everything that needs no model; raise InputError/OutputError with one clear line."""
    labels = _check_model(args)
    classes = [resolve_class(c, labels) for c in args.classes] if labels is not None else []
    address = _serve_address(args)
    plan = PLANNERS[args.command](args, classes, address)
    plan.labels, plan.class_specs, plan.address = labels, list(args.classes), address
    return plan


def resolve_classes(plan: Plan, labels: list[str]) -> None:
    """After loading a model whose labels were unknown before: resolve --class and re-check outputs."""
    if plan.labels is None and plan.class_specs:
        plan.options.classes = [resolve_class(c, labels) for c in plan.class_specs]
        if isinstance(plan.options, ImageOptions):
            image_output_paths(plan.options.inputs, plan.options.per_image, plan.options)


def _check_model(args: argparse.Namespace) -> list[str] | None:
    check_model_name(args.model)
    _check_device(args)
    if is_tflite(args.model):
        return _check_tflite(args)
    if not installed("tensorflow"):
        raise InputError(f"TensorFlow is not installed, so --model {args.model} cannot run here (a light kiosk "
                         "install?); this install runs exported models: --model FILE.tflite, made with "
                         "'stream-cam export' where TensorFlow is installed")
    _check_runtime(args)
    _check_attention_methods(args)
    if args.weights not in ("imagenet", "random"):
        if args.model not in APPLICATIONS:
            raise InputError("--weights applies to the Keras applications (xception, resnet50, ...)")
        if not Path(args.weights).is_file():
            raise InputError(f"weights file {args.weights} does not exist")
    if args.preprocess is not None:
        check_scaling(args.preprocess)
    if args.labels is not None:
        return read_label_file(args.labels)
    return builtin_labels(args.model)


def _check_attention_methods(args: argparse.Namespace) -> None:
    """--method rollout/relevance follow a transformer's attention: every built-in model is a CNN."""
    if args.model not in MODEL_NAMES:
        return  # a file or a keras-hub preset: known once it is loaded
    asked = (args.methods or []) if args.command == "evaluate" else [getattr(args, "method", None)]
    for method in asked:
        if method in TRANSFORMER_METHODS:
            raise InputError(f"--method {method} follows a transformer's attention; {args.model} is a CNN and has "
                             f"none (use gradcam, or another CAM method: {', '.join(CNN_METHODS)})")


def _check_device(args: argparse.Namespace) -> None:
    """--device and --gpu-memory with what cannot use a GPU, refused before TensorFlow loads."""
    device, memory = str(args.device), args.gpu_memory
    if memory is not None and device == "cpu":
        raise InputError("--gpu-memory caps a GPU's memory; it does not apply to --device cpu")
    if not device.startswith("gpu") and memory is None:
        return
    asked = f"--device {device}" if device.startswith("gpu") else "--gpu-memory"
    if is_tflite(args.model):
        raise InputError(f"{asked}: a .tflite file runs on LiteRT, on the CPU; give the model it was exported "
                         "from to run on a GPU")
    if getattr(args, "runtime", None) == "litert":
        raise InputError(f"{asked}: --runtime litert runs on the CPU; use --runtime tensorflow (or auto) on a GPU")


def _check_runtime(args: argparse.Namespace) -> None:
    """--runtime litert with what only TensorFlow runs, refused before TensorFlow loads."""
    if getattr(args, "runtime", None) != "litert":
        return
    if getattr(args, "render", None) == "device":
        raise InputError("--render device draws inside the TensorFlow engine's graph; leave out --runtime litert")
    if getattr(args, "mixed_precision", None) is not None:
        raise InputError(f"--mixed-precision {args.mixed_precision} runs the TensorFlow engine; LiteRT computes in "
                         "float32: leave out --runtime litert")
    method = getattr(args, "method", None)
    if method is not None and not METHOD_INFO[method].exportable:
        raise InputError(f"--runtime litert: LiteRT has no form of {method} (it needs an SVD); "
                         "use another --method or --runtime tensorflow")
    if args.xla:
        raise InputError("--xla compiles the TensorFlow engine; it does not apply to --runtime litert")


def _check_tflite(args: argparse.Namespace) -> list[str]:
    """An exported file carries its labels, scaling, layer and method: flags that would change them are refused."""
    given = fixed_by_tflite_given(args)
    if given:
        raise InputError(f"{', '.join(given)} cannot change an exported .tflite model; give them to 'stream-cam export'")
    if getattr(args, "runtime", "auto") == "tensorflow":
        raise InputError("--runtime tensorflow: a .tflite file runs on LiteRT; give the model it was exported from")
    if getattr(args, "render", None) == "device":
        raise InputError("--render device draws inside the TensorFlow engine's graph; a .tflite file runs on LiteRT: "
                         "give the model it was exported from")
    if getattr(args, "mixed_precision", None) is not None:
        raise InputError(f"--mixed-precision {args.mixed_precision}: a .tflite file runs on LiteRT in float32; give "
                         "the model it was exported from")
    try:
        info = read_description(args.model)
    except ModelError as exc:
        raise InputError(str(exc)) from exc
    # evaluate takes several --method (or all); the other commands one
    asked = (args.methods or []) if args.command == "evaluate" else [getattr(args, "method", None)]
    for method in asked:
        if method not in (None, "all", info["method"]):
            raise InputError(f"{args.model} was exported with --method {info['method']}; export it again with "
                             f"--method {method}, or leave --method out")
    return info["labels"]


TOKEN_VARIABLE = "STREAM_CAM_TOKEN"


def _read_token(args: argparse.Namespace) -> str | None:
    """The token from --token, --token-file or $STREAM_CAM_TOKEN (in that order), or None."""
    if getattr(args, "token", None):
        if getattr(args, "token_file", None) is not None:
            raise InputError("give the token once: --token or --token-file")
        return args.token
    path = getattr(args, "token_file", None)
    if path is not None:
        if path.exists() and not path.is_file():  # never /dev/zero, a FIFO, a folder: a bounded first line
            raise InputError(f"--token-file {path}: not a regular file; put the token on its first line")
        try:
            with path.open("rb") as handle:
                lines = handle.read(4096).decode("utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"--token-file {path}: cannot read it ({getattr(exc, 'strerror', None) or exc})") from exc
        token = lines[0].strip() if lines else ""
        if not token:
            raise InputError(f"--token-file {path}: the first line is empty; put the token there")
        return token
    return os.environ.get(TOKEN_VARIABLE, "").strip() or None


def _serve_address(args: argparse.Namespace) -> Address | None:
    if getattr(args, "serve", None) is None:
        if getattr(args, "token", None) or getattr(args, "token_file", None) is not None:
            raise InputError("--token goes with --serve")
        if getattr(args, "allow_host", None):
            raise InputError("--allow-host goes with --serve")
        return None
    args.token = _read_token(args)
    address = parse_address(args.serve)
    check_token(address, args.token)
    probe_port(address)  # a port in use fails now, not after loading the model
    return address


def _stream_values(args: argparse.Namespace, classes: list[int], address: Address | None) -> dict:
    return dict(alpha=args.alpha, colormap=args.colormap, top_k=args.top_k, classes=classes, smooth=args.smooth,
                log=args.log, codec=args.codec, overwrite=args.overwrite, serve=address, token=args.token,
                allow_hosts=tuple(getattr(args, "allow_host", ()) or ()), render=args.render)


def _plan_image(args: argparse.Namespace, classes: list[int], address: Address | None) -> Plan:
    args.paths = expand_folders(args.paths)  # a folder: every picture in it
    for spec in args.paths:
        read_image(spec)  # decoded now (tens of ms), so a damaged picture is refused before the model loads
    options = ImageOptions(classes=classes, explain_top=args.explain_top, top_k=args.top_k, alpha=args.alpha,
                           colormap=args.colormap, output=args.output, overwrite=args.overwrite, as_json=args.json,
                           inputs=list(args.paths), class_count=len(args.classes), render=args.render)
    options.validate()
    image_output_paths(options.inputs, options.per_image, options)
    return Plan("image", options, None, [])


CAMERA_FLAGS = ("width", "height", "fps", "fourcc", "backend")


def camera_settings(args: argparse.Namespace, sources: list[str]) -> list[CameraSettings]:
    """Each source's camera mode: a flag given once applies to every camera, or once per --source."""
    given = {name: getattr(args, name, None) or [] for name in CAMERA_FLAGS}
    for name, values in given.items():
        if len(values) not in (0, 1, len(sources)):
            raise InputError(f"--{name} given {len(values)} times for {len(sources)} sources: give it once (every "
                             "camera) or once per --source")
    settings = []
    for i, source in enumerate(sources):
        chosen = {name: (values[i] if len(values) == len(sources) else values[0]) if values else None
                  for name, values in given.items()}
        if not is_camera(source) and len(sources) > 1 and all(len(v) <= 1 for v in given.values()):
            chosen = {}  # a flag given once is meant for the cameras among several sources
        settings.append(CameraSettings(**chosen))
    return settings


def _plan_live(args: argparse.Namespace, classes: list[int], address: Address | None) -> Plan:
    sources = args.sources or ["0"]
    cameras = camera_settings(args, sources)
    if args.window and not display_available():
        raise InputError("no display found (DISPLAY is not set or cannot be opened): give --no-window, with --record "
                         "FILE or --serve PORT to see the result")
    for source, settings in zip(sources, cameras):
        probe_source(source, settings)
    if args.fullscreen and not args.window:
        raise InputError("--fullscreen needs a window; leave out --no-window")
    options = LiveOptions(sources=sources, loop=args.loop, record=args.record, window=args.window,
                          fullscreen=args.fullscreen, max_frames=args.max_frames, kiosk=args.kiosk, cycle=args.cycle,
                          sync=args.sync, motion=args.motion, score_channels=args.score_channels,
                          trust=args.trust, cameras=cameras, **_stream_values(args, classes, address))
    options.validate()
    return Plan("live", options, None, [])


def _plan_video(args: argparse.Namespace, classes: list[int], address: Address | None) -> Plan:
    check_one_class(len(args.classes))  # before the inputs are opened: names resolve later
    for spec in args.inputs:
        # One input that is not a video is refused now; among several, it fails alone later (exit 3)
        # while the others are processed.
        probe_source(spec) if len(args.inputs) == 1 else check_source(spec)
    options = VideoOptions(batch=args.batch, hud=args.hud, results=args.results, resume=args.resume,
                           **_stream_values(args, classes, address))
    options.validate()
    video_output_paths(args.inputs, args.output, options)
    cluster = _ray_options(args, classes)
    return Plan("video", options, None, [], cluster=cluster)


def _ray_options(args: argparse.Namespace, classes: list[int]) -> Any:
    """--ray and its flags: Ray installed, and nothing asked that only a local run can do."""
    if args.ray is None:
        if args.workers is not None or args.chunk is not None or args.gpus_per_worker is not None:
            raise InputError("--workers, --chunk and --gpus-per-worker go with --ray")
        return None
    if args.gpus_per_worker is not None and str(args.device) == "cpu":
        raise InputError("--gpus-per-worker puts the workers on GPUs; leave out --device cpu")
    if str(args.device).startswith("gpu") and args.gpus_per_worker is None:
        raise InputError(f"--device {args.device} with --ray: Ray gives workers a GPU only when asked; add "
                         "--gpus-per-worker F (e.g. 1, or 0.5 to share one)")
    from ..jobs.ray_cluster import check_ray_available
    from ..jobs.ray_video import RayOptions

    check_ray_available()
    if args.serve is not None:
        raise InputError("--serve watches a local run; leave it out with --ray (the progress bar shows the job)")
    if args.log is not None:
        raise InputError("--log writes a local run's JSON lines; with --ray use --results FILE.parquet")
    if args.classes and not classes:
        raise InputError("with --ray, give --class as class indices or give --labels: the driver loads no model")
    return RayOptions(address=args.ray, workers=args.workers, chunk=args.chunk, gpus_per_worker=args.gpus_per_worker)


def _plan_demo(args: argparse.Namespace, classes: list[int], address: Address | None) -> Plan:
    window = args.window and display_available()
    interactive = args.output is None and (window or address is not None or args.kiosk)
    if interactive:
        live = LiveOptions(source="demo", loop=True, window=window, kiosk=args.kiosk, cycle=args.cycle,
                           sync=args.sync, motion=args.motion, score_channels=args.score_channels,
                           trust=args.trust, **_stream_values(args, classes, address))
        live.validate()
        return Plan("demo", live, None, [], interactive=True)
    if args.kiosk or args.cycle is not None or args.sync or args.motion != defaults.MOTION or args.trust is not None:
        raise InputError("--kiosk, --cycle, --sync, --motion and --trust play the demo live; leave out -o "
                         "(a file is written at full speed, every frame with its own heatmap)")
    check_one_class(len(args.classes))
    output = args.output if args.output is not None else next_free_path(DEMO_OUTPUT)
    check_codec(args.codec, output)
    # A file run can still be watched: --serve shows its progress (view only).
    options = VideoOptions(**_stream_values(args, classes, address))
    options.validate()
    video_output_paths(["demo"], output, options)
    return Plan("demo", options, None, [], output=output)


def _plan_evaluate(args: argparse.Namespace, classes: list[int], address: Address | None) -> Plan:
    from ..jobs.evaluate import EvaluateOptions, check_inputs

    check_inputs(args.paths)
    chosen = args.methods or ["gradcam"]
    args.all_methods = "all" in chosen  # every method the model offers (known once it is loaded)
    args.methods = list(METHOD_NAMES) if args.all_methods else list(dict.fromkeys(chosen))
    options = EvaluateOptions(steps=args.steps, every=args.every, as_json=args.json, plot=args.plot,
                              per_frame=args.per_frame, overwrite=args.overwrite, smooth=args.smooth,
                              draws=args.draws, road=args.road)
    options.validate()
    return Plan("evaluate", options, None, [])


def _plan_export(args: argparse.Namespace, classes: list[int], address: Address | None) -> Plan:
    from ..jobs.export import ExportOptions

    if is_tflite(args.model):
        raise InputError(f"{args.model} is already exported; give the model it was made from")
    if args.method is not None and not METHOD_INFO[args.method].exportable and args.format == "tflite":
        raise InputError(f"--method {args.method} cannot be exported for LiteRT: it needs an SVD, which LiteRT does "
                         "not have (--format savedmodel can)")
    options = ExportOptions(args.output, args.format, args.precision, args.overwrite)
    options.validate()
    return Plan("export", options, None, [])


PLANNERS = {"image": _plan_image, "live": _plan_live, "video": _plan_video, "demo": _plan_demo,
            "evaluate": _plan_evaluate, "export": _plan_export}
