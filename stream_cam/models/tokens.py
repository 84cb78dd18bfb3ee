"""Vision transformers: where a model's attention is, and how its tokens lie on the image.

A ViT turns the image into a grid of patches, each a token, plus ``prefix`` tokens that are no
patch (CLS, DeiT's distillation token, register tokens). The attention layers are Keras
``MultiHeadAttention`` layers, whether the model is a keras-hub ViT or DeiT (where they sit
inside one encoder layer, not in the functional graph) or a user's own functional ViT.

Everything here is read from the model: the patch size from its patch embedding (a Conv2D whose
strides equal its kernel), the token count from one run on a blank image, and ``prefix`` as the
tokens that are not patches. Nothing guesses a square.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ModelError


@dataclass(frozen=True)
class TokenLayout:
    """How a transformer's tokens map to the image, and the attention layers in call order."""

    grid: tuple[int, int]  # patches (rows, columns)
    prefix: int  # tokens before the patches (CLS, distillation, registers)
    attention: tuple[Any, ...]  # the MultiHeadAttention layers, first block first (none for Swin)
    channels: int  # the width of a token
    pooling: str  # "token" (CLS) or "mean" (no class token)
    output_of: Any = None  # without readable attention (Swin): the layer whose output is the token map

    @property
    def tokens(self) -> int:
        return self.prefix + self.grid[0] * self.grid[1]


def _all_layers(model: Any) -> list[Any]:
    return list(model._flatten_layers(include_self=False, recursive=True))


def attention_layers(model: Any) -> list[Any]:
    import keras

    return [layer for layer in _all_layers(model) if isinstance(layer, keras.layers.MultiHeadAttention)]


def _patch_size(model: Any, input_size: tuple[int, int]) -> tuple[int, int]:
    import keras

    for layer in _all_layers(model):
        if isinstance(layer, keras.layers.Conv2D):
            kernel, strides = tuple(layer.kernel_size), tuple(layer.strides)
            if kernel == strides and kernel[0] > 1:
                return kernel
    for layer in _all_layers(model):
        size = getattr(layer, "patch_size", None)
        if isinstance(size, int):
            return size, size
        if isinstance(size, (tuple, list)) and len(size) == 2:
            return int(size[0]), int(size[1])
    raise ModelError(f"model {model.name!r} has attention layers but no patch embedding stream_cam can read "
                     "(a Conv2D whose strides equal its kernel, or a layer with a patch_size): cannot place its "
                     "tokens on the image")


class AttentionRecorder:
    """While active, every MultiHeadAttention layer of the model also hands over what it saw:
    its query input (N, T, C) and its attention probabilities (N, heads, T, T), in call order.

    ``replace`` (a function of the layer's index and its query) may swap the query (and value, when
    they are the same tensor) for another tensor first: how a token map becomes a tap of the graph.
    The model itself is not changed: the layers' ``call`` is restored on exit."""

    def __init__(self, layers: Any, replace: Any = None) -> None:
        self.layers = list(layers)
        self.replace = replace
        self.queries: list[Any] = []
        self.probabilities: list[Any] = []

    def __enter__(self) -> "AttentionRecorder":
        for index, layer in enumerate(self.layers):
            layer.call = self._wrapped(index, layer, layer.call)
        return self

    def _wrapped(self, index: int, layer: Any, original: Any) -> Any:
        def call(query: Any, value: Any, key: Any = None, *args: Any, return_attention_scores: bool = False,
                 **kwargs: Any) -> Any:
            if self.replace is not None:
                same = value is query
                query = self.replace(index, query)
                value = query if same else value
            output, scores = original(query, value, key, *args, return_attention_scores=True, **kwargs)
            self.queries.append(query)
            self.probabilities.append(scores)
            return (output, scores) if return_attention_scores else output

        return call

    def __exit__(self, *exc_info: object) -> None:
        for layer in self.layers:
            layer.__dict__.pop("call", None)


def token_layout(model: Any, input_size: tuple[int, int]) -> TokenLayout | None:
    """The layout of a transformer image model, or None for a model without attention layers."""
    layers = attention_layers(model)
    if not layers:
        return None
    for layer in layers:  # flash attention never materialises the probabilities
        if getattr(layer, "_flash_attention", False):
            layer._flash_attention = False
    patch = _patch_size(model, input_size)
    grid = (input_size[0] // patch[0], input_size[1] // patch[1])
    with AttentionRecorder(layers) as seen:
        model(np.zeros((1, *input_size, 3), np.float32), training=False)
    if len(seen.queries) != len(layers):
        raise ModelError(f"model {model.name!r}: {len(seen.queries)} of its {len(layers)} attention layers ran on "
                         "an image; stream_cam follows attention that runs once per block")
    tokens, channels = int(seen.queries[-1].shape[1]), int(seen.queries[-1].shape[2])
    prefix = tokens - grid[0] * grid[1]
    if prefix < 0 or any(int(q.shape[1]) != tokens for q in seen.queries):
        raise ModelError(f"model {model.name!r}: its {tokens} tokens do not fit a {grid[0]}x{grid[1]} patch grid "
                         "(windowed or merging attention, such as Swin's, is explained at its last stage's output)")
    return TokenLayout(grid, prefix, tuple(layers), channels, "token" if prefix > 0 else "mean")


class OutputRecorder:
    """While active, ``layer``'s output goes through ``replace`` first (how the last stage of a
    GAP-pooled transformer such as Swin becomes the tap). The layer's ``call`` is restored on exit."""

    def __init__(self, layer: Any, replace: Any) -> None:
        self.layer, self.replace = layer, replace

    def __enter__(self) -> "OutputRecorder":
        original = self.layer.call

        def call(*args: Any, **kwargs: Any) -> Any:
            return self.replace(original(*args, **kwargs))

        self.layer.call = call
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.layer.__dict__.pop("call", None)


def _last_token_output(model: Any) -> Any:
    """Walking back from the logits, the first layer whose output is a token sequence (N, T, C), or
    None when a 4-D (image-like) output comes first. Nested functional models (keras-hub's backbone
    inside its classifier) are walked into."""
    for layer in reversed(getattr(model, "layers", [])):
        if hasattr(layer, "layers") and hasattr(layer, "outputs"):
            found = _last_token_output(layer)
            if found is not None:
                return found
            continue
        try:
            shape = tuple(layer.output.shape)
        except (AttributeError, ValueError):
            continue
        if len(shape) == 4:
            return None
        if len(shape) == 3 and shape[1] is not None and shape[1] > 1:
            return layer
    return None


def pooled_token_layout(model: Any, input_size: tuple[int, int]) -> TokenLayout | None:
    """The layout of a transformer without a class token or readable attention (Swin: windowed
    attention, patch merging, a global-average-pooled head): its last token sequence before the
    pooling is the map. The grid is the one stride that tiles the input into exactly that many
    tokens; None when the model has no such output."""
    layer = _last_token_output(model)
    if layer is None:
        return None
    tokens, channels = int(layer.output.shape[1]), int(layer.output.shape[2])
    height, width = input_size
    stride = round((height * width / tokens) ** 0.5)
    if stride < 1 or height % stride or width % stride or (height // stride) * (width // stride) != tokens:
        raise ModelError(f"model {model.name!r}: its last token sequence ({layer.name}, {tokens} tokens) does not "
                         f"tile its {height}x{width} input; pass --layer with a 4-D layer to explain")
    return TokenLayout((height // stride, width // stride), 0, (), channels, "mean", output_of=layer)
