"""A transformer as the CAM engine sees a CNN: images -> [a token map (N, h, w, C), logits].

The token map is the query input of the last attention layer (its block's first LayerNorm, the
tap pytorch-grad-cam uses for ViTs: with CLS pooling, the last block's OUTPUT patch tokens get
exactly zero gradient); for a transformer without readable attention (Swin), the last stage's
output before the pooled head. Its patch tokens are reshaped to the patch grid INSIDE the graph and put
back in place, so the map is on the path to the logits and every CAM method's gradient reaches
it. The attention probabilities of every block are kept from the same pass (:attr:`attention`)
for the transformer methods (:mod:`.attention`).
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

from ..errors import ModelError
from ..models.loaded import LoadedModel
from ..models.tokens import AttentionRecorder, OutputRecorder
from .graph import Head

PROBABILITIES = {"softmax", "sigmoid"}


def _final_layer(model: Any) -> Any:
    output = getattr(model, "output_dense", None)  # keras-hub's image classifiers name it
    return output if output is not None else model.layers[-1]


@contextlib.contextmanager
def _linear(layer: Any, activation: str) -> Iterator[None]:
    """The final layer without its softmax/sigmoid while the CAM model runs (logits are explained)."""
    import keras

    if activation == "linear":
        yield
        return
    saved = layer.activation
    layer.activation = keras.activations.linear
    try:
        yield
    finally:
        layer.activation = saved


class TokenTap:
    """Callable like the CAM model of a CNN: ``(images) -> [token map, logits]``."""

    def __init__(self, model: LoadedModel) -> None:
        import keras

        if model.tokens is None:
            raise ModelError(f"{model.name} is not a transformer")
        self.model, self.layout = model, model.tokens
        self.final = _final_layer(model.keras_model)
        name = getattr(getattr(self.final, "activation", None), "__name__", "linear")
        if isinstance(self.final, (keras.layers.Softmax, keras.layers.Activation)):
            raise ModelError(f"{model.name}: its last layer is a separate {type(self.final).__name__}; build the "
                             "classifier with the activation on its last Dense layer, or without one")
        self.activation = name if name in PROBABILITIES else "linear"
        self.head = Head(self.activation)
        self.attention: list[Any] = []  # the last call's probabilities (N, heads, T, T), first block first

    def _as_map(self, tokens: Any, captured: dict) -> Any:
        """(N, prefix + h*w, C) tokens -> the same tokens, with their patch grid (N, h, w, C) kept in
        ``captured`` and put back on the path to the logits (so the gradients reach it)."""
        import tensorflow as tf

        (h, w), prefix, channels = self.layout.grid, self.layout.prefix, tokens.shape[-1]
        grid = tf.reshape(tokens[:, prefix:], [-1, h, w, channels])
        captured["map"] = grid
        return tf.concat([tokens[:, :prefix], tf.reshape(grid, [-1, h * w, channels])], axis=1)

    def __call__(self, images: Any, training: bool = False) -> list[Any]:
        captured: dict[str, Any] = {}
        if self.layout.output_of is not None:  # Swin: the last stage's output is the map
            recorder: Any = OutputRecorder(self.layout.output_of, lambda tokens: self._as_map(tokens, captured))
        else:  # the query entering the last attention layer is the map
            last = len(self.layout.attention) - 1
            recorder = AttentionRecorder(self.layout.attention,
                                         lambda i, query: self._as_map(query, captured) if i == last else query)
        with recorder, _linear(self.final, self.activation):
            logits = self.model.keras_model(images, training=False)
        self.attention = getattr(recorder, "probabilities", [])
        return [captured["map"], logits]
