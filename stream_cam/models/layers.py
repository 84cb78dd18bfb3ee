"""Find a model's layers without running it: the Grad-CAM target, nested models, clear errors.

A functional view of Sequential models, a walk through nested models (``base/layer``
names), and the rule for the default target: the last 4-D layer before global pooling.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import keras

from ..errors import ModelError

POOLING_TYPES = (keras.layers.GlobalAveragePooling2D, keras.layers.GlobalMaxPooling2D)
PATH_SEPARATOR = "/"


@dataclass(frozen=True)
class LayerInfo:
    path: tuple[str, ...]  # names from the outer model inwards
    layer: Any
    shape: tuple[Any, ...] | None  # output shape, None if unknown

    @property
    def name(self) -> str:
        return PATH_SEPARATOR.join(self.path)

    @property
    def is_spatial(self) -> bool:
        return self.shape is not None and len(self.shape) == 4


def as_functional(model: Any) -> keras.Model:
    """Return a functional view of a built Sequential or functional Keras model."""
    if not isinstance(model, keras.Model):
        raise ModelError(f"expected a Keras model, got {type(model).__name__}")
    if isinstance(model, keras.Sequential):
        try:
            inputs, outputs = model.inputs, model.outputs
        except (AttributeError, ValueError):
            inputs = outputs = None
        if not inputs:
            raise ModelError(
                f"the Sequential model {model.name!r} has no input shape yet: start it with "
                "keras.Input(shape) or call model.build((None, height, width, 3)) first"
            )
        return keras.Model(inputs, outputs, name=model.name)
    if not hasattr(model, "_nodes_by_depth") and not getattr(model, "inputs", None):
        raise ModelError(
            f"model {model.name!r} is a subclassed model; Grad-CAM needs a functional or "
            "Sequential model whose layers can be reached"
        )
    return model


def _output_shape(layer: Any) -> tuple[Any, ...] | None:
    try:
        return tuple(layer.output.shape)
    except (AttributeError, ValueError):
        return None


def walk_layers(model: Any, prefix: tuple[str, ...] = ()) -> Iterator[LayerInfo]:
    """Every layer in graph order, descending into nested models."""
    for layer in as_functional(model).layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        path = (*prefix, layer.name)
        yield LayerInfo(path, layer, _output_shape(layer))
        if isinstance(layer, keras.Model):
            yield from walk_layers(layer, path)


def _spatial_size(info: LayerInfo) -> int:
    h, w = (info.shape or (None, None, None))[1:3]
    return (h or 2) * (w or 2)  # unknown sizes count as spatial


def candidate_layers(model: Any) -> list[LayerInfo]:
    """Layers with a 4-D output, the only ones Grad-CAM can explain."""
    return [info for info in walk_layers(model) if info.is_spatial and not isinstance(info.layer, keras.Model)]


def find_target_layer(model: Any, name: str | None = None) -> LayerInfo:
    """The layer named ``name`` (``"base/out_relu"`` or just ``"out_relu"``), or the
    last layer with a 4-D output before global pooling when ``name`` is None."""
    layers = list(walk_layers(model))
    if name is None:
        before_pooling: list[LayerInfo] = []
        for info in layers:
            if isinstance(info.layer, POOLING_TYPES):
                break
            before_pooling.append(info)
        spatial = [i for i in before_pooling if i.is_spatial and not isinstance(i.layer, keras.Model)
                   and _spatial_size(i) > 1]
        if not spatial:
            raise ModelError(
                f"model {getattr(model, 'name', '?')!r} has no layer with a 4-D (batch, height, "
                "width, channels) output: Grad-CAM needs a convolutional image model"
            )
        return spatial[-1]
    matches = [i for i in layers if i.name == name or i.path[-1] == name]
    if not matches:
        names = [i.name for i in candidate_layers(model)]
        shown = ", ".join(names[-8:]) if names else "none"
        more = f" (last 8 of {len(names)})" if len(names) > 8 else ""
        raise ModelError(f"no layer named {name!r}; layers with a 4-D output{more}: {shown}")
    info = matches[-1]
    if not info.is_spatial:
        raise ModelError(
            f"layer {info.name!r} has output shape {info.shape}, not 4-D (batch, height, width, "
            "channels): pick a convolutional layer, or leave the layer out to find one"
        )
    return info


