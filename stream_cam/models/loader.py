"""Load an image classifier by name or path, ready for Grad-CAM.

* ``efficientnet_lite0`` (default): real ImageNet weights shipped in a pip
  package, read without torch and without network.
* Keras applications by name (``xception``, ``resnet50``, ...), ImageNet weights
  downloaded by Keras when online, or a local weights file.
* Any ``.keras`` / ``.h5`` file.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ..errors import InputError, ModelError
from .labels import read_label_file
from .loaded import LoadedModel
from .registry import APPLICATIONS, DEFAULT_MODEL, LITE_MODELS, ApplicationSpec, check_model_name

log = logging.getLogger(__name__)


def load_model(
    name_or_path: str | Path = DEFAULT_MODEL,
    *,
    layer: str | None = None,
    weights: str | Path | None = "imagenet",
    preprocessing: str | None = None,
    labels: str | Path | list[str] | None = None,
) -> LoadedModel:
    """Return a :class:`LoadedModel` for a built-in name or a ``.keras``/``.h5`` file.

    ``weights`` (Keras applications only): ``"imagenet"`` (downloaded by Keras and
    cached), a local weights file, or None for random weights (benchmarks).
    ``preprocessing`` overrides the input scaling: none, -1..1, 0..1, caffe, torch, lite.
    ``labels``: a label file (one name per line, or JSON) or a list of names.
    """
    label_list = read_label_file(labels) if isinstance(labels, (str, Path)) else labels
    text = str(name_or_path)
    if text in LITE_MODELS:
        from .efficientnet_lite import TARGET_LAYER, build_efficientnet_lite

        keras_model = build_efficientnet_lite(text)
        return LoadedModel.from_keras(keras_model, layer or TARGET_LAYER, preprocessing or "lite",
                                      label_list, text)
    if text in APPLICATIONS:
        spec = APPLICATIONS[text]
        keras_model = _build_application(text, spec, weights)
        return LoadedModel.from_keras(keras_model, layer or spec.layer, preprocessing or spec.scaling,
                                      label_list, text)
    check_model_name(text)
    path = Path(text)
    keras_model = _load_model_file(path)
    return LoadedModel.from_keras(keras_model, layer, preprocessing or "none", label_list, path.stem)


def _build_application(name: str, spec: ApplicationSpec, weights: str | Path | None) -> Any:
    import keras

    constructor = getattr(keras.applications, spec.constructor)
    if weights not in (None, "imagenet") and not Path(weights).is_file():
        raise InputError(f"weights file {weights} does not exist")
    try:
        return constructor(weights=None if weights is None else str(weights),
                           input_shape=(spec.size, spec.size, 3))
    except Exception as exc:  # noqa: BLE001 - Keras raises bare Exception for failed downloads
        download_failed = "URL fetch failure" in str(exc) or isinstance(exc, OSError)
        if weights != "imagenet" or not download_failed:
            raise
        raise ModelError(
            f"cannot download the ImageNet weights for {name} (no network?): run once online so Keras "
            f"caches them in ~/.keras/models/, pass a local file with --weights FILE, or use the "
            f"offline default --model {DEFAULT_MODEL}"
        ) from exc


def _load_model_file(path: Path) -> Any:
    import keras

    try:
        return keras.models.load_model(path, compile=False, safe_mode=True)
    except ValueError as exc:
        if "safe_mode" in str(exc) or "Lambda" in str(exc):
            raise ModelError(
                f"{path} contains a Lambda layer, which can run arbitrary code; Keras safe mode "
                "refuses it. If you trust the file, load it yourself with "
                "keras.models.load_model(path, safe_mode=False) and pass it to stream_cam.GradCAM"
            ) from exc
        raise ModelError(f"cannot load model {path}: {exc}") from exc
    except (OSError, TypeError, KeyError) as exc:
        raise ModelError(f"cannot load model {path}: {exc}") from exc
