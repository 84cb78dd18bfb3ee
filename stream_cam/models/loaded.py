"""A model ready for Grad-CAM: the Keras model plus everything needed to feed it."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..errors import ModelError
from .labels import generic_labels, imagenet_labels
from .layers import LayerInfo, as_functional, find_target_layer
from .preprocessing import CUSTOM, SCALINGS, Scaling, application_scaling, check_scaling, preprocess
from .tokens import TokenLayout, pooled_token_layout, token_layout


log = logging.getLogger(__name__)


def token_target(tokens: TokenLayout) -> LayerInfo:
    """A transformer's tap, (N, tokens, channels): the query input of its last attention layer, or
    the last stage's output of a transformer without readable attention (Swin)."""
    last = tokens.output_of if tokens.output_of is not None else tokens.attention[-1]
    return LayerInfo((str(getattr(last, "path", last.name)),), last, (None, tokens.tokens, tokens.channels))


@dataclass(frozen=True)
class LoadedModel:
    """A Keras image classifier, its Grad-CAM target layer, input size, scaling and labels."""

    keras_model: Any
    target: LayerInfo
    input_size: tuple[int, int]  # (height, width)
    scaling: str
    labels: list[str] = field(repr=False)
    name: str = "model"
    tokens: TokenLayout | None = None  # a vision transformer: its patch grid and attention layers
    custom_scaling: Scaling | None = field(default=None, repr=False, compare=False)  # scaling == "custom"

    @property
    def is_transformer(self) -> bool:
        return self.tokens is not None

    @property
    def attends(self) -> bool:
        """A transformer whose attention probabilities stream_cam reads (not Swin's windows)."""
        return self.tokens is not None and bool(self.tokens.attention)

    @property
    def layer_name(self) -> str:
        return self.target.name

    def preprocess(self, rgb_uint8_batch: np.ndarray, bgr: bool = False) -> np.ndarray:
        """uint8 RGB ``(N, H, W, 3)`` or ``(H, W, 3)`` of any size -> float32 model input.

        ``bgr=True`` takes OpenCV's BGR frames instead."""
        return preprocess(rgb_uint8_batch, self.input_size, self.scaling, bgr, self.custom_scaling)

    def with_scaling(self, scaling: str | Scaling) -> "LoadedModel":
        """The same model fed with another scaling: a name (:data:`.preprocessing.SCALINGS`) or a function."""
        name, custom = scaling_of(scaling)
        return replace(self, scaling=name, custom_scaling=custom)

    def with_layer(self, layer: str | None) -> "LoadedModel":
        if self.tokens is not None and layer is not None:
            raise ModelError(f"{self.name} is a transformer: it is explained at its last block's attention input "
                             f"({self.layer_name}); leave --layer out")
        return replace(self, target=find_target_layer(self.keras_model, layer))

    def label(self, index: int) -> str:
        return self.labels[index] if 0 <= index < len(self.labels) else f"class {index}"

    @classmethod
    def from_keras(
        cls,
        keras_model: Any,
        layer: str | None = None,
        scaling: str | Scaling | None = None,
        labels: list[str] | None = None,
        name: str | None = None,
    ) -> "LoadedModel":
        """Wrap any functional or Sequential Keras image classifier.

        ``scaling``: how uint8 RGB pixels become the model's input: a name (none, -1..1, 0..1, caffe,
        torch, lite) or a function of a float32 RGB batch in 0..255. None: a keras.applications model
        recognised by its name gets its own ``preprocess_input``'s scaling; any other model gets the
        pixels as they are, with one warning that names the argument."""
        as_functional(keras_model)  # clear errors for unbuilt Sequential and subclassed models
        if scaling is None:
            scaling = application_scaling(str(keras_model.name))
            if scaling is None:
                log.warning("%s: stream_cam does not know how this model scales its input, so it gets RGB "
                            "pixels 0..255 as they are; if it expects otherwise pass preprocess= (one of %s, or "
                            "a function of a float32 RGB batch in 0..255)", name or keras_model.name,
                            ", ".join(SCALINGS))
                scaling = "none"
        scaling_name, custom = scaling_of(scaling)
        input_size = _input_size(keras_model)
        num_classes = _num_classes(keras_model)
        if labels is None:
            labels = imagenet_labels() if num_classes == 1000 else generic_labels(num_classes or 0)
        elif num_classes is not None and len(labels) != num_classes:
            raise ModelError(f"the label file has {len(labels)} names but the model has {num_classes} classes")
        # A transformer (attention layers over a patch grid) is explained through its tokens, unless a
        # --layer names a 4-D layer to explain instead.
        tokens = token_layout(keras_model, input_size)
        if tokens is not None and layer is not None:
            try:
                target, tokens = find_target_layer(keras_model, layer), None  # a 4-D layer the user chose
            except ModelError as exc:
                raise ModelError(f"{name or keras_model.name} is a transformer, explained at its last block's "
                                 f"attention input; leave --layer out ({exc})") from exc
        elif tokens is not None:
            target = token_target(tokens)
        else:
            try:
                target = find_target_layer(keras_model, layer)
            except ModelError:
                # No 4-D layer: a transformer without a class token (Swin) is explained on its last stage.
                tokens = pooled_token_layout(keras_model, input_size) if layer is None else None
                if tokens is None:
                    raise
                target = token_target(tokens)
        return cls(
            keras_model=keras_model,
            target=target,
            input_size=input_size,
            scaling=scaling_name,
            labels=list(labels),
            name=name or keras_model.name,
            tokens=tokens,
            custom_scaling=custom,
        )


def scaling_of(scaling: str | Scaling) -> tuple[str, Scaling | None]:
    """A scaling's canonical name, and the function when it is one (named :data:`CUSTOM`)."""
    if callable(scaling):
        return CUSTOM, scaling
    if not isinstance(scaling, str):
        raise TypeError(f"preprocess must be a scaling name or a function, got {type(scaling).__name__}")
    return check_scaling(scaling), None


def _input_size(keras_model: Any) -> tuple[int, int]:
    try:
        shape = tuple(keras_model.inputs[0].shape)
    except (AttributeError, IndexError, TypeError, ValueError):
        shape = ()
    if len(shape) != 4 or shape[-1] != 3:
        raise ModelError(
            f"model {keras_model.name!r} takes input shaped {shape or 'unknown'}; stream_cam needs "
            "an image model with input (batch, height, width, 3)"
        )
    if not shape[1] or not shape[2]:
        raise ModelError(
            f"model {keras_model.name!r} has no fixed input size {shape}; rebuild it with a fixed "
            "keras.Input((height, width, 3))"
        )
    return int(shape[1]), int(shape[2])


def _num_classes(keras_model: Any) -> int | None:
    try:
        shape = tuple(keras_model.outputs[0].shape)
    except (AttributeError, IndexError, TypeError, ValueError):
        return None
    return int(shape[-1]) if len(shape) == 2 and shape[-1] else None
