"""Export an explainer as one serving signature, for LiteRT (``.tflite``) or TensorFlow Serving (SavedModel).

The exported ``explain`` signature is the engine's own computation, traced once more:

    image  uint8 (1, h, w, 3)  RGB, already resized to the model's input size
    target int32 (1, 1)        a class index, or -r for the class at rank r (-1 = top-1)
      -> probabilities float32 (1, classes), classes int32 (1, 1), heatmaps float32 (1, 1, h', w')

The model's input scaling runs inside. The graph is the compiled engine's (BatchNorm folded),
so the heatmaps are the engine's. LiteRT has no kernels for some of TensorFlow's gradient ops:
what is between the target layer and the logits must be pooling and dense layers (no ReLU),
as in the offline models and most transfer-learning heads. EigenCAM needs an SVD, which
LiteRT lacks. Both are refused with a clear message. A fourth output, ``description``, is
the JSON that says what the file is (labels, method, input size, ...).
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError
from ..models.preprocessing import SCALINGS
from .gradcam import CAM

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
EXPORTABLE = ("gradcam", "gradcam++", "xgradcam", "layercam", "hirescam", "scorecam")


def describe(cam: CAM, precision: str) -> dict:
    """What the exported file carries about itself (read back by models.tflite without TensorFlow)."""
    model = cam.model
    return {"format": "stream_cam", "version": FORMAT_VERSION, "model": model.name, "method": cam.method_name,
            "layer": model.layer_name, "input_size": list(model.input_size), "scaling": model.scaling,
            "labels": list(model.labels), "num_classes": cam.num_classes, "precision": precision}


def check_exportable(method: str) -> None:
    if method not in EXPORTABLE:
        raise ModelError(f"--method {method} cannot be exported: it needs an SVD, which LiteRT does not have; "
                         f"export one of {', '.join(EXPORTABLE)}")


def save_archive(cam: CAM, folder: Path, precision: str) -> None:
    """The explainer as a SavedModel with the ``explain`` and ``describe`` signatures."""
    import keras

    tf = cam._tf
    height, width = cam.model.input_size
    info = np.frombuffer(json.dumps(describe(cam, precision)).encode(), np.uint8)

    def explain(image: Any, target: Any) -> dict:
        x = SCALINGS[cam.model.scaling](tf.cast(image, tf.float32))  # the same table as the engine's input
        probabilities, classes, heatmaps = cam._compute(x, target, 1)
        # The description rides along as a constant output: a second signature would be its own
        # subgraph, and LiteRT applies XNNPACK to the first one only (6x slower measured).
        return {"probabilities": probabilities, "classes": classes, "heatmaps": heatmaps,
                "description": tf.constant(info)}

    archive = keras.export.ExportArchive()
    archive.track(cam._cam_model)
    archive.add_endpoint("explain", explain, input_signature=[
        tf.TensorSpec([1, height, width, 3], tf.uint8, name="image"), tf.TensorSpec([1, 1], tf.int32, name="target")])
    archive.write_out(str(folder), verbose=False)


def to_tflite(cam: CAM, precision: str = "f32") -> bytes:
    """The explainer as a ``.tflite`` flatbuffer that LiteRT's built-in ops run."""
    tf = cam._tf
    folder = Path(tempfile.mkdtemp(prefix="stream_cam_export_"))
    try:
        save_archive(cam, folder, precision)
        converter = tf.lite.TFLiteConverter.from_saved_model(str(folder), signature_keys=["explain"])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if precision == "f16":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        try:
            return converter.convert()
        except Exception as exc:  # noqa: BLE001 - the converter raises its own ConverterError (no public base)
            missing = sorted({op for op in ("ReluGrad", "Relu6Grad", "Svd", "StridedSliceGrad", "BroadcastGradientArgs")
                              if op in str(exc)})
            raise ModelError(
                f"LiteRT cannot run this model's explainer (needs TensorFlow ops {', '.join(missing) or 'it lacks'}): "
                f"between the target layer {cam.model.layer_name!r} and the logits there must be only pooling "
                "and dense layers; choose a later --layer, or export --format savedmodel") from exc
    finally:
        shutil.rmtree(folder, ignore_errors=True)
