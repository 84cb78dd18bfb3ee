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
from typing import Any

import keras

from ..errors import ModelError
from ..models.layers import LayerInfo, as_functional
from .fold import find_foldable, fused_call

Call = tuple[Any, tuple, Any]  # (layer, positional args, output) of one layer call

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
