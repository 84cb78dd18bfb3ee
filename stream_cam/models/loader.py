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

from ..errors import InputError, ModelError, one_line
from .labels import read_label_file
from .loaded import LoadedModel
from .precision import lower_precision
from .preprocessing import Scaling, application_scaling
from .registry import APPLICATIONS, DEFAULT_MODEL, HUB_PREFIX, LITE_MODELS, ApplicationSpec, check_model_name

log = logging.getLogger(__name__)


def load_model(
    name_or_path: str | Path = DEFAULT_MODEL,
    *,
    layer: str | None = None,
    weights: str | Path | None = "imagenet",
    preprocessing: str | Scaling | None = None,
    labels: str | Path | list[str] | None = None,
    precision: str | None = None,
) -> LoadedModel:
    """Return a :class:`LoadedModel` for a built-in name or a ``.keras``/``.h5`` file.

    ``weights`` (Keras applications only): ``"imagenet"`` (downloaded by Keras and
    cached), a local weights file, or ``"random"`` (or None) for random weights (benchmarks).
    ``preprocessing`` overrides the input scaling: none, -1..1, 0..1, caffe, torch, lite, or a
    function of a float32 RGB batch in 0..255.
    ``labels``: a label file (one name per line, or JSON) or a list of names.
    ``precision``: ``"float16"`` or ``"bfloat16"`` computes the forward pass in it (:mod:`.precision`).
    """
    label_list = read_label_file(labels) if isinstance(labels, (str, Path)) else labels
    weights = None if weights == "random" else weights  # the CLI's word for no weights
    text = str(name_or_path)
    if text in LITE_MODELS:
        from .efficientnet_lite import TARGET_LAYER, build_efficientnet_lite

        keras_model, layer, scaling = build_efficientnet_lite(text), layer or TARGET_LAYER, "lite"
    elif text in APPLICATIONS:
        spec = APPLICATIONS[text]
        keras_model, layer, scaling = _build_application(text, spec, weights), layer or spec.layer, spec.scaling
    elif text.startswith(HUB_PREFIX):
        keras_model, scaling = _load_hub_preset(text[len(HUB_PREFIX):])
    else:
        check_model_name(text)
        keras_model, text = _load_model_file(Path(text)), Path(text).stem
        scaling = application_scaling(str(keras_model.name)) or "none"  # a saved Xception keeps its name
    if precision is not None:
        keras_model = lower_precision(keras_model, precision)
    return LoadedModel.from_keras(keras_model, layer, preprocessing or scaling, label_list, text)


HUB_MISSING = 'keras-hub models need keras-hub: pip install "stream-cam[hub]" (or pip install keras-hub)'


def _import_keras_hub() -> Any:
    try:
        import keras_hub
    except ImportError as exc:
        raise ModelError(HUB_MISSING) from exc
    return keras_hub


def _load_hub_preset(preset: str) -> tuple[Any, str]:
    """A keras-hub image classifier preset (downloaded by keras-hub, then cached), and its input scaling."""
    keras_hub = _import_keras_hub()
    try:
        classifier = keras_hub.models.ImageClassifier.from_preset(preset)
    except OSError as exc:  # requests' ConnectionError is an OSError
        raise ModelError(f"cannot download the keras-hub preset {preset!r} (no network?): run once online so "
                         "keras-hub caches it, or save the model with model.save('model.keras') and give the "
                         "file") from exc
    except ValueError as exc:
        raise ModelError(f"keras-hub has no image classifier preset {preset!r}: {str(exc)[:200]}") from exc
    converter = getattr(getattr(classifier, "preprocessor", None), "image_converter", None)
    return classifier, _scaling_of(getattr(converter, "scale", None), getattr(converter, "offset", None))


def _scaling_of(scale: Any, offset: Any) -> str:
    """stream_cam's name for a keras-hub image converter's ``x * scale + offset``."""
    import numpy as np

    scale = np.atleast_1d(np.asarray(scale if scale is not None else 1.0, np.float64))
    offset = np.atleast_1d(np.asarray(offset if offset is not None else 0.0, np.float64))
    if np.allclose(scale, 1 / 127.5) and np.allclose(offset, -1.0):
        return "-1..1"
    if np.allclose(scale, 1 / 255.0) and np.allclose(offset, 0.0):
        return "0..1"
    if np.allclose(scale * 255 * np.array([0.229, 0.224, 0.225]), 1.0, atol=1e-2):
        return "torch"
    return "none"


def _build_application(name: str, spec: ApplicationSpec, weights: str | Path | None) -> Any:
    import keras

    constructor = getattr(keras.applications, spec.constructor)
    if weights not in (None, "imagenet") and not Path(weights).is_file():
        raise InputError(f"weights file {weights} does not exist; give 'imagenet', 'random' or a weights file")
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


MAX_CONFIG_BYTES = 64 << 20  # a .keras file's config.json, unpacked (ViT-L's is under 1 MB)
MAX_CONFIG_DEPTH = 400  # nesting of its JSON (a deep functional model nests under 30)


def _keras_config(path: Path) -> bytes:
    """A .keras archive's config.json, checked before anything parses it: its unpacked size from the
    archive's directory (a 3 MB file may inflate to 3 GB), and its nesting (100,000 levels would
    exhaust Python's recursion). b"" when the file is not a zip archive (Keras says what it is)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo("config.json")
            if info.file_size > MAX_CONFIG_BYTES:
                raise ModelError(f"cannot load model {path}: its config.json unpacks to {info.file_size / 1e6:.0f} MB "
                                 f"(a model's is a few MB at most); not a model stream_cam loads")
            text = archive.read(info)  # reads at most the size the directory declared
    except (OSError, KeyError, zipfile.BadZipFile, RuntimeError):
        return b""
    if _nesting(text) > MAX_CONFIG_DEPTH:
        raise ModelError(f"cannot load model {path}: its config.json nests deeper than {MAX_CONFIG_DEPTH} levels; "
                         "not a model stream_cam loads")
    return text


def _nesting(text: bytes) -> int:
    """The deepest nesting of JSON arrays and objects in ``text`` (brackets inside strings ignored)."""
    import re

    import numpy as np

    bare = np.frombuffer(re.sub(rb'"(?:[^"\\]|\\.)*"', b'""', text), np.uint8)
    steps = np.isin(bare, (ord("["), ord("{"))).astype(np.int64) - np.isin(bare, (ord("]"), ord("}")))
    return int(np.cumsum(steps).max(initial=0))


def _load_model_file(path: Path) -> Any:
    import zipfile

    import keras

    if path.suffix.lower() == ".keras" and b"keras_hub" in _keras_config(path):
        _import_keras_hub()  # registers its layers and models with Keras
    try:
        return keras.models.load_model(path, compile=False, safe_mode=True)
    except ValueError as exc:
        if "safe_mode" in str(exc) or "Lambda" in str(exc):
            what = "a Lambda layer" if "Lambda" in str(exc) else "a layer that Keras safe mode refuses"
            raise ModelError(
                f"{path} contains {what}, which can run arbitrary code ({one_line(exc, 120)}). If you trust "
                "the file, load it yourself with keras.models.load_model(path, safe_mode=False) and pass it "
                "to stream_cam.GradCAM") from exc
        raise ModelError(f"cannot load model {path}: {one_line(exc)}") from exc
    except (OSError, TypeError, KeyError, AttributeError, IndexError, RecursionError, zipfile.BadZipFile) as exc:
        raise ModelError(f"cannot load model {path}: {one_line(exc)}") from exc
