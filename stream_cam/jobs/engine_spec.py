"""What builds the engine, as a small value: the CLI builds one, and so does each Ray worker."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..engine.registry import DEFAULT_RUNTIME, DEFAULT_SCORE_CHANNELS, default_method
from ..models.registry import DEFAULT_MODEL
from ..models.tflite import is_tflite
from .export import CHECK_PHOTO  # the real photo every converted explainer is checked on

if TYPE_CHECKING:
    from ..engine.explainer import Explains
    from ..engine.litert_cache import LiteRTCache


@dataclass(frozen=True)
class EngineSpec:
    model: str = DEFAULT_MODEL
    layer: str | None = None
    weights: str = "imagenet"
    preprocess: str | None = None
    labels: Path | None = None
    method: str | None = None  # None: gradcam (relevance for a transformer), or a .tflite file's own method
    score_channels: int | None = DEFAULT_SCORE_CHANNELS
    xla: bool = False
    runtime: str = DEFAULT_RUNTIME  # auto | tensorflow | litert (engine/runtime.py)
    maps: int = 1  # classes explained per frame (top-k's K): a LiteRT form gives them in one call
    batch: int = 1  # frames per engine call (video's --batch, live's sources): auto runs the faster runtime at it
    device: str = "auto"  # auto | cpu | gpu | gpu:N (engine/device.py)
    gpu_memory: int | None = None  # MB: a hard cap on the GPU's memory (default: it grows as needed)
    precision: str | None = None  # float16 | bfloat16: the forward pass in it (models/precision.py)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "EngineSpec":
        maps = len(getattr(args, "classes", []) or []) or getattr(args, "explain_top", 1)
        # Frames per engine call: video's --batch; live explains one frame of each source per call.
        batch = getattr(args, "batch", None) or len(getattr(args, "sources", None) or ()) or 1
        runtime = getattr(args, "runtime", "tensorflow")  # export: the engine itself
        precision = getattr(args, "mixed_precision", None)
        if runtime == "auto" and (getattr(args, "render", None) == "device" or precision is not None):
            runtime = "tensorflow"  # the frame path on the device and mixed precision are the TensorFlow engine's
        return cls(model=args.model, layer=args.layer, weights=args.weights, preprocess=args.preprocess,
                   labels=args.labels, method=getattr(args, "method", None), score_channels=args.score_channels,
                   xla=args.xla, runtime=runtime, maps=maps, batch=batch,
                   device=str(getattr(args, "device", "auto")), gpu_memory=getattr(args, "gpu_memory", None),
                   precision=precision)

    @property
    def needs_tensorflow(self) -> bool:
        return not is_tflite(self.model)

    def build(self, threads: int | None = None) -> "Explains":
        """Load the model and build its explainer: the compiled engine (imports TensorFlow), on the
        runtime ``runtime`` chooses (LiteRT on a CPU by default, converted once and cached), or
        LiteRT for an exported ``.tflite`` file (no TensorFlow)."""
        if not self.needs_tensorflow:
            from ..engine.litert import LiteRTExplainer

            return LiteRTExplainer(self.model, threads)
        import tensorflow as tf

        from ..engine.device import configure_devices, parse_device
        from ..engine.methods import build_method
        from ..engine.runtime import choose_runtime
        from ..models.loader import load_model

        # The device and its memory policy first: TensorFlow allows neither once it has placed anything.
        device = configure_devices(tf.config, parse_device(self.device), self.gpu_memory)
        model = load_model(self.model, layer=self.layer, weights=self.weights,
                           preprocessing=self.preprocess, labels=self.labels, precision=self.precision)
        cam = build_method(self.method or default_method(model.attends), model, jit_compile=self.xla,
                           score_channels=self.score_channels)
        cam.device = device
        return choose_runtime(cam, self.runtime, runtime_cache(), self.maps, threads, self.batch)


def runtime_cache() -> "LiteRTCache":
    """The LiteRT cache in the user's cache folder, checked on the built-in cat photo; its one-time
    "preparing a faster runtime" lines go to stderr (stdout may be --json)."""
    from ..defaults import cache_folder as default_cache_folder
    from ..engine.litert_cache import LiteRTCache
    from ..sources.images import builtin_image

    return LiteRTCache(default_cache_folder(), builtin_image(CHECK_PHOTO),
                       announce=lambda line: print(line, file=sys.stderr, flush=True))
