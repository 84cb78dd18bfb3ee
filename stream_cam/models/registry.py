"""The built-in model names. Light on purpose: no TensorFlow import."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MODEL = "efficientnet_lite0"


@dataclass(frozen=True)
class ApplicationSpec:
    """A keras.applications model: constructor, input side, scaling, target layer."""

    constructor: str
    size: int
    scaling: str
    layer: str | None = None  # None: found automatically


APPLICATIONS: dict[str, ApplicationSpec] = {
    "xception": ApplicationSpec("Xception", 299, "-1..1", "block14_sepconv2_act"),
    "mobilenet_v2": ApplicationSpec("MobileNetV2", 224, "-1..1", "out_relu"),
    "mobilenet_v3_small": ApplicationSpec("MobileNetV3Small", 224, "none"),
    "mobilenet_v3_large": ApplicationSpec("MobileNetV3Large", 224, "none"),
    "efficientnet_b0": ApplicationSpec("EfficientNetB0", 224, "none", "top_activation"),
    "resnet50": ApplicationSpec("ResNet50", 224, "caffe", "conv5_block3_out"),
    "convnext_tiny": ApplicationSpec("ConvNeXtTiny", 224, "none"),
}

MODEL_NAMES = (DEFAULT_MODEL, *APPLICATIONS)
