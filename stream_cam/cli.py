"""The ``stream-cam`` command line.

Every user-facing problem becomes ONE line on stderr and a non-zero exit; a
traceback only with ``--debug``. Heavy imports (TensorFlow) happen after the
arguments are checked, so ``--help`` and argument errors are instant.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Sequence

from .errors import InputError, StreamCamError

log = logging.getLogger("stream_cam")

PROG = "stream-cam"
EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 1
EXIT_INTERRUPTED = 130


class OneLineParser(argparse.ArgumentParser):
    """argparse, but an error is one line naming the command and how to get help."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise InputError(f"{self.prog}: {message} (see '{self.prog} --help')")


def _alpha(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"alpha must be a number from 0 to 1, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"alpha must be from 0 to 1, got {text}")
    return value


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


COMMANDS = {"image": run_image}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        args = build_parser().parse_args(argv)
        logging.basicConfig(
            level=logging.DEBUG if args.debug else logging.INFO if args.verbose else logging.WARNING,
            format="%(name)s: %(levelname)s: %(message)s",
        )
        if args.command is None:
            build_parser().print_help(sys.stderr)
            return EXIT_USER_ERROR
        from .tf_runtime import import_tensorflow

        import_tensorflow(verbose=args.debug)  # first, before anything imports keras
        return COMMANDS[args.command](args)
    except StreamCamError as exc:
        if debug:
            raise
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, no traceback
        if debug:
            raise
        print(f"{PROG}: internal error: {type(exc).__name__}: {exc} (run with --debug for details)",
              file=sys.stderr)
        return EXIT_INTERNAL_ERROR


if __name__ == "__main__":
    sys.exit(main())
