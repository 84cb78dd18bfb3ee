"""Keras graph surgery for Grad-CAM: find the target layer and expose it.

Grad-CAM needs, from ONE forward pass, the target layer's activations and the
model's pre-activation scores (logits). :func:`build_cam_model` makes a model
with exactly those two outputs. It re-calls the user's own layers (shared
weights, nothing copied except a final softmax/sigmoid layer, see
:class:`Head`) through ``keras.models.clone_model(call_function=...)``, so it
works where ``keras.Model(model.inputs, inner_layer.output)`` fails with
"Graph disconnected": a keras.applications base nested inside a user's
transfer-learning model. The user's model is never mutated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import keras

from ..errors import ModelError
from .fold import find_foldable, fused_call

POOLING_TYPES = (keras.layers.GlobalAveragePooling2D, keras.layers.GlobalMaxPooling2D)
PATH_SEPARATOR = "/"
Call = tuple[Any, tuple, Any]  # (layer, positional args, output) of one layer call


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
    h, w = info.shape[1:3]
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


# Final activations whose pre-activation score Grad-CAM explains.
_PROBABILITY_ACTIVATIONS = {"softmax", "sigmoid"}


def _activation_name(layer: Any) -> str:
    if isinstance(layer, keras.layers.Softmax):
        return "softmax"
    activation = getattr(layer, "activation", None)
    name = getattr(activation, "__name__", None) or (activation if isinstance(activation, str) else "")
    return name if name in _PROBABILITY_ACTIVATIONS else "linear"


@dataclass
class Head:
    """How to turn the CAM model's second output into logits and probabilities.

    ``layer`` is None when the second output already holds the logits; otherwise
    it is a linear twin of the user's final layer (same config and weights,
    activation removed) applied to that layer's input.
    """

    activation: str  # "softmax", "sigmoid" or "linear" (probabilities = softmax)
    layer: Any = None

    def logits(self, x: Any) -> Any:
        return x if self.layer is None else self.layer(x)

    def probabilities(self, logits: Any) -> Any:
        if self.activation == "sigmoid":
            return keras.ops.sigmoid(logits)
        return keras.ops.softmax(logits, axis=-1)


def _linear_twin(layer: Any, inputs: Any) -> Any:
    config = {**layer.get_config(), "activation": "linear", "name": layer.name + "_logits"}
    twin = layer.__class__.from_config(config)
    twin(inputs)  # build
    twin.set_weights(layer.get_weights())
    return twin


def _capture(model: Any, target: LayerInfo, fold: bool) -> tuple[keras.Model, Any, list[Call]]:
    """Re-call ``model``'s layers on new inputs, catching the target's output on the way.

    With ``fold``, a dry run first finds the Conv+BatchNormalization pairs to fold
    (see :mod:`.fold`). Returns the re-called model, the target's symbolic output,
    and every call as (layer, args, output) so the caller can find the final layer.
    """
    functional = as_functional(model)
    pairs: dict[str, Any] = {}
    if fold:
        _, _, calls = _recall(functional, target, {}, fold)
        pairs = find_foldable(calls, keep={target.path[0]})
    return _recall(functional, target, pairs, fold)


def _recall(functional: keras.Model, target: LayerInfo, pairs: dict[str, Any],
            fold: bool) -> tuple[keras.Model, Any, list[Call]]:
    captured: dict[str, Any] = {}
    calls: list[Call] = []
    folded_bns = {bn.name for bn in pairs.values()}

    def call_function(layer: Any, *args: Any, **kwargs: Any) -> Any:
        if layer.name == target.path[0] and len(target.path) > 1:
            # The target sits inside this nested model: call it through a capturing twin.
            inner = LayerInfo(target.path[1:], target.layer, target.shape)
            clone, activations, _ = _capture(layer, inner, fold)
            both = keras.Model(clone.inputs, [activations, clone.outputs[0]])
            captured["target"], output = both(*args, **kwargs)
        elif layer.name in pairs:
            output = fused_call(layer, pairs[layer.name], *args, **kwargs)
        elif layer.name in folded_bns:
            output = args[0]  # already applied by the fused convolution
        else:
            output = layer(*args, **kwargs)
            if layer.name == target.path[0]:
                captured["target"] = output
        calls.append((layer, args, output))
        return output

    # clone_function returns each layer itself, so every weight is shared, not copied.
    clone = keras.models.clone_model(functional, clone_function=lambda layer: layer, call_function=call_function)
    if "target" not in captured:
        raise ModelError(f"layer {target.name!r} is not on the path from the model's input to its output")
    if len(clone.outputs) != 1:
        raise ModelError(f"model {functional.name!r} has {len(clone.outputs)} outputs; Grad-CAM needs one")
    return clone, captured["target"], calls


def build_cam_model(model: Any, target: LayerInfo, fold_batchnorm: bool = True) -> tuple[keras.Model, Head]:
    """A model mapping the input to [target activations, head input], and its :class:`Head`.

    ``fold_batchnorm`` folds inference BatchNormalization into the convolution
    before it where that is unambiguous (faster; see :mod:`.fold`).
    """
    clone, activations, calls = _capture(model, target, fold_batchnorm)
    final_output = clone.outputs[0]
    final_layer, final_input = next(((l, a[0] if a else None) for l, a, o in calls if o is final_output),
                                    (None, None))
    activation = _activation_name(final_layer) if final_layer is not None else "linear"
    if activation == "linear":
        head, second = Head("linear"), final_output
    elif isinstance(final_layer, (keras.layers.Activation, keras.layers.Softmax)):
        head, second = Head(activation), final_input
    else:
        head, second = Head(activation, _linear_twin(final_layer, final_input)), final_input
    if len(second.shape) != 2:
        raise ModelError(
            f"model {model.name!r} outputs shape {tuple(second.shape)}; Grad-CAM needs "
            "class scores shaped (batch, classes)"
        )
    return keras.Model(clone.inputs, [activations, second], name=f"{model.name}_cam"), head
