"""Mixed precision: the same model, its layers computing in float16 or bfloat16.

Keras' mixed policies (``mixed_float16``, ``mixed_bfloat16``) keep every variable in float32 and
cast each layer's inputs to the lower precision, so the forward pass (the convolutions, nearly all
of the cost) runs in it. Setting the global policy only reaches layers built afterwards, and a model
read from a file keeps the policy saved in it, so the model is rebuilt from its config with the
policy in every layer and given the user's weights: the same classifier wherever it came from, and the user's
own model is not touched. Its last layer (the class scores) stays float32. The CAM engine casts what comes out (logits, gradients, activations) to
float32 before it weighs channels and makes the map (:mod:`stream_cam.engine.gradcam`).
"""

from __future__ import annotations

import logging
from typing import Any

from ..errors import InputError, ModelError

log = logging.getLogger(__name__)

PRECISIONS = ("float16", "bfloat16")


def check_precision(precision: str | None) -> str | None:
    """None (float32, the default) or one of :data:`PRECISIONS`."""
    if precision is not None and not isinstance(precision, str):
        raise TypeError(f"precision must be a str or None, not {type(precision).__name__}")
    if precision is not None and precision not in PRECISIONS:
        raise InputError(f"--mixed-precision {precision}: choose one of {', '.join(PRECISIONS)}")
    return precision


def _with_policy(config: Any, policy: str, keep: str) -> Any:
    """A model's serialized config with every layer's dtype policy set to ``policy``, but ``keep``'s."""
    if isinstance(config, list):
        return [_with_policy(item, policy, keep) for item in config]
    if not isinstance(config, dict):
        return config
    out = {key: _with_policy(value, policy, keep) for key, value in config.items()}
    dtype = config.get("dtype")
    if isinstance(dtype, dict) and dtype.get("class_name") == "DTypePolicy" and config.get("name") != keep:
        out["dtype"] = {**dtype, "config": {**dtype.get("config", {}), "name": policy}}
    if "head_dtype" in config or {"backbone", "num_classes"} <= config.keys():
        out["head_dtype"] = "float32"  # keras-hub's classifiers build their last layer in this one
    return out


def lower_precision(keras_model: Any, precision: str) -> Any:
    """A copy of ``keras_model`` whose layers compute in ``precision`` (variables stay float32)."""
    import keras

    policy = f"mixed_{check_precision(precision)}"
    # The classifier's last layer stays float32, as Keras advises: the scores it gives (and their
    # gradients, which the CAM follows back) keep their precision.
    final = getattr(keras_model, "output_dense", None) or keras_model.layers[-1]
    try:
        config = _with_policy(keras.saving.serialize_keras_object(keras_model), policy, final.name)
        config.pop("compile_config", None)  # an explainer never trains: no optimizer, no loss
        clone = keras.saving.deserialize_keras_object(config)
        clone.set_weights(keras_model.get_weights())
    except (TypeError, ValueError, KeyError, NotImplementedError) as exc:
        raise ModelError(f"--mixed-precision {precision}: model {keras_model.name!r} could not be rebuilt from its "
                         f"config ({exc}); run it in float32 (leave the flag out)") from exc
    log.debug("%s: its layers compute in %s", keras_model.name, precision)
    return clone
