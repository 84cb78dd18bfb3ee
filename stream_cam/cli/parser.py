"""The ``stream-cam`` argument parser: commands, flags and their help. No checks that need files."""

from __future__ import annotations

import argparse
from typing import Any

from ..engine.registry import DEFAULT_METHOD, EXPORTABLE
from ..errors import InputError
from ..keys import keys_epilog
from .flags import COMMANDS, add_flags

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


def _common(parser: argparse.ArgumentParser, top: bool) -> None:
    # On the top parser and again on each command, so `stream-cam image --debug` works too.
    default = False if top else argparse.SUPPRESS
    parser.add_argument("--debug", action="store_true", default=default,
                        help="show tracebacks and TensorFlow's own output")
    parser.add_argument("-v", "--verbose", action="store_true", default=default, help="log what happens")


def build_parser() -> OneLineParser:
    from .. import __version__

    parser = OneLineParser(prog=PROG, description="Real-time Grad-CAM explanations for image classifiers.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    _common(parser, top=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    keys: dict[str, Any] = dict(epilog=keys_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)

    descriptions: dict[str, tuple[str, str, dict[str, Any]]] = {
        "image": ("explain still images and save overlays",
                  "Explain images: print the top classes and save one Grad-CAM overlay per explained class. "
                  "PATH may be a file or a built-in photo such as skimage:chelsea.", {}),
        "live": ("explain a webcam, stream or file in real time",
                 "Live Grad-CAM: camera, stream or file -> heatmap overlay and HUD in a window, optionally "
                 "recorded.", keys),
        "video": ("explain video files, every frame",
                  "Explain every frame of video files; the output has the input's frame count, size and fps.", {}),
        "demo": ("the built-in demo: no camera, no files",
                 "Explain a built-in clip made from scikit-image's photos. Shows a window when a display exists; "
                 "otherwise writes the annotated video and says where.", keys),
        "evaluate": ("score how faithful each method's heatmaps are",
                     "Faithfulness of the heatmaps on images, folders, skimage:NAME photos and videos (every Nth "
                     "frame): deletion and insertion AUC, Average Drop % and Increase in Confidence %, beside a "
                     "random and a centred map.", {}),
        "export": ("export the explainer for LiteRT (kiosks without TensorFlow)",
                   "Write a model's explainer as one file: uint8 frame in, probabilities, class and heatmap out. "
                   "A .tflite file runs on LiteRT (pip install ai-edge-litert) and works as --model for every "
                   f"command, without TensorFlow. Exportable: {', '.join(EXPORTABLE)}, on models whose head "
                   "after the target layer is pooling and dense layers.", {}),
        "cameras": ("list the cameras this machine has",
                    "The cameras here: /dev/videoN with their names and, where v4l2-ctl can tell, their formats, "
                    "sizes and rates (elsewhere: the indices that open). An empty list is a normal answer.", {}),
        "info": ("what this machine offers: versions, devices, GPU, runtime, cameras",
                 "Versions (stream_cam, TensorFlow and the CUDA/cuDNN it was built for, Keras, OpenCV, LiteRT, PyAV, "
                 "Ray, keras-hub), the devices TensorFlow sees and whether a GPU is usable, the runtime that "
                 "explains by default, the extras installed and the cameras found.", {}),
    }
    for name in COMMANDS:
        summary, description, extra = descriptions[name]
        command = commands.add_parser(name, help=summary, description=description, **extra)
        add_flags(command, name)
        _common(command, top=False)
    # What the jobs read but these commands do not take.
    commands.choices["evaluate"].set_defaults(method=DEFAULT_METHOD, classes=[])
    commands.choices["export"].set_defaults(classes=[])
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
