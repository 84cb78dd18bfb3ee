"""What builds the engine, as a small value: the CLI builds one, and so does each Ray worker."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..engine.registry import DEFAULT_METHOD, DEFAULT_SCORE_CHANNELS
from ..models.registry import DEFAULT_MODEL

if TYPE_CHECKING:  # the engine's module loads TensorFlow
    from ..engine.gradcam import CAM


@dataclass(frozen=True)
class EngineSpec:
    model: str = DEFAULT_MODEL
    layer: str | None = None
    weights: str = "imagenet"
    preprocess: str | None = None
    labels: Path | None = None
    method: str = DEFAULT_METHOD
    score_channels: int | None = DEFAULT_SCORE_CHANNELS
    xla: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "EngineSpec":
        return cls(model=args.model, layer=args.layer, weights=args.weights, preprocess=args.preprocess,
                   labels=args.labels, method=args.method, score_channels=args.score_channels, xla=args.xla)

    def build(self) -> "CAM":
        """Load the model and build the CAM engine (imports TensorFlow)."""
        from ..engine.methods import build_method
        from ..models.loader import load_model

        weights = None if self.weights == "random" else self.weights
        model = load_model(self.model, layer=self.layer, weights=weights,
                           preprocessing=self.preprocess, labels=self.labels)
        return build_method(self.method, model, jit_compile=self.xla, score_channels=self.score_channels)
