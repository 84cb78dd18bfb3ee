"""What builds the engine, as a small value: the CLI builds one, and so does each Ray worker."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..engine.registry import DEFAULT_SCORE_CHANNELS, default_method
from ..models.registry import DEFAULT_MODEL
from ..models.tflite import is_tflite

if TYPE_CHECKING:
    from ..engine.explainer import Explains


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

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "EngineSpec":
        return cls(model=args.model, layer=args.layer, weights=args.weights, preprocess=args.preprocess,
                   labels=args.labels, method=getattr(args, "method", None), score_channels=args.score_channels, xla=args.xla)

    @property
    def needs_tensorflow(self) -> bool:
        return not is_tflite(self.model)

    def build(self, threads: int | None = None) -> "Explains":
        """Load the model and build its explainer: the compiled engine (imports TensorFlow), or
        LiteRT for an exported ``.tflite`` file (no TensorFlow)."""
        if not self.needs_tensorflow:
            from ..engine.litert import LiteRTExplainer

            return LiteRTExplainer(self.model, threads)
        from ..engine.methods import build_method
        from ..models.loader import load_model

        weights = None if self.weights == "random" else self.weights
        model = load_model(self.model, layer=self.layer, weights=weights,
                           preprocessing=self.preprocess, labels=self.labels)
        return build_method(self.method or default_method(model.attends), model, jit_compile=self.xla,
                            score_channels=self.score_channels)
