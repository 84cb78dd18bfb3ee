"""Export an explainer as one serving signature, for LiteRT (``.tflite``) or TensorFlow Serving (SavedModel).

The exported ``explain`` signature is the engine's own computation, traced once more:

    image  uint8 (1, h, w, 3)  RGB, already resized to the model's input size
    target int32 (1, K)        class indices, or -r for the class at rank r (-1 = top-1)
      -> probabilities float32 (1, classes), classes int32 (1, K), heatmaps float32 (1, K, h', w')

K (``maps``, 1 unless asked) is fixed in the file: top-k's K maps come from ONE call.

The model's input scaling runs inside. The graph is the compiled engine's (BatchNorm folded),
so the heatmaps are the engine's. LiteRT has no kernels for some of TensorFlow's gradient ops:
what is between the target layer and the logits must be pooling and dense layers (no ReLU),
as in the offline models and most transfer-learning heads (a transformer's gradient through its
blocks is traced with two stand-ins LiteRT can run: :func:`_gradients_liteRT_runs`). EigenCAM
needs an SVD, which LiteRT lacks. Both are refused with a clear message. A fourth output,
``description``, is the JSON that says what the file is (labels, method, input size, ...).
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..errors import ModelError
from ..models.preprocessing import SCALINGS
from .gradcam import CAM
from .registry import EXPORTABLE, METHOD_INFO

log = logging.getLogger(__name__)

FORMAT_VERSION = 1


def describe(cam: CAM, precision: str, maps: int = 1) -> dict:
    """What the exported file carries about itself (read back by models.tflite without TensorFlow)."""
    model = cam.model
    return {"format": "stream_cam", "version": FORMAT_VERSION, "model": model.name, "method": cam.method_name,
            "layer": model.layer_name, "input_size": list(model.input_size), "scaling": model.scaling,
            "labels": list(model.labels), "num_classes": cam.num_classes, "precision": precision, "maps": maps}


def check_exportable(method: str) -> None:
    if method not in EXPORTABLE:
        raise ModelError(f"--method {method} cannot be exported: it needs an SVD, which LiteRT does not have; "
                         f"export one of {', '.join(EXPORTABLE)}")


def _strided_slice_gradient(op: Any, grad: Any) -> tuple:
    """StridedSlice's gradient without StridedSliceGrad (which LiteRT lacks): slice a tensor of the
    input's element indices the same way, and scatter the incoming gradient to those indices."""
    import tensorflow as tf

    x = op.inputs[0]
    index = tf.reshape(tf.range(tf.size(x)), tf.shape(x))
    masks = {name: op.get_attr(name) for name in
             ("begin_mask", "end_mask", "ellipsis_mask", "new_axis_mask", "shrink_axis_mask")}
    picked = tf.strided_slice(index, op.inputs[1], op.inputs[2], op.inputs[3], **masks)
    flat = tf.scatter_nd(tf.reshape(picked, [-1, 1]), tf.reshape(grad, [-1]), tf.reshape(tf.size(x), [1]))
    return tf.reshape(flat, tf.shape(x)), None, None, None


def _erf(x: Any) -> Any:
    """erf from exp, mul and add (Abramowitz & Stegun 7.1.26, error below 1.5e-7): LiteRT has no Erf."""
    import tensorflow as tf

    t = 1.0 / (1.0 + 0.3275911 * tf.abs(x))
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return tf.sign(x) * (1.0 - poly * tf.exp(-x * x))


@contextlib.contextmanager
def _gradients_liteRT_runs() -> Iterator[None]:
    """While the exported graph is traced, what a transformer's gradient needs is written with ops
    LiteRT has: StridedSlice (a ViT's class-token pick, x[:, 0]) is differentiated by a scatter, and
    exact GELU (whose Erfc the converter fuses away only without a gradient) uses :func:`_erf`.
    The same numbers to ~1e-6 (the export checks them against the engine); the engine is untouched."""
    import tensorflow as tf
    from tensorflow.python.framework import ops  # the registry has no public way to swap an entry

    entry = ops._gradient_registry._registry["StridedSlice"]
    saved_gradient, saved_gelu = entry["type"], tf.nn.gelu

    def gelu(features: Any, approximate: bool = False, name: Any = None) -> Any:
        if approximate:
            return saved_gelu(features, approximate=True, name=name)
        return 0.5 * features * (1.0 + _erf(features * 0.7071067811865476))

    entry["type"], tf.nn.gelu = _strided_slice_gradient, gelu
    try:
        yield
    finally:
        entry["type"], tf.nn.gelu = saved_gradient, saved_gelu


def save_archive(cam: CAM, folder: Path, precision: str, maps: int = 1) -> None:
    """The explainer as a SavedModel with the ``explain`` and ``describe`` signatures."""
    import keras

    tf = cam._tf
    if cam.model.scaling not in SCALINGS:
        raise ModelError("a model whose input is scaled by a Python function (preprocess=) cannot be exported; "
                         f"give a named scaling ({', '.join(SCALINGS)})")
    height, width = cam.model.input_size
    info = np.frombuffer(json.dumps(describe(cam, precision, maps)).encode(), np.uint8)

    def explain(image: Any, target: Any) -> dict:
        x = SCALINGS[cam.model.scaling](tf.cast(image, tf.float32))  # the same table as the engine's input
        probabilities, classes, heatmaps = cam._compute(x, target, maps)
        # The description rides along as a constant output: a second signature would be its own
        # subgraph, and LiteRT applies XNNPACK to the first one only (6x slower measured).
        return {"probabilities": probabilities, "classes": classes, "heatmaps": heatmaps,
                "description": tf.constant(info)}

    archive = keras.export.ExportArchive()
    # The variables: a CNN's CAM model, or a transformer's own model (its TokenTap only wraps it).
    archive.track(cam.model.keras_model if cam.model.is_transformer else cam._cam_model)
    # The endpoint is traced in here; a method without a gradient needs no stand-ins.
    with _gradients_liteRT_runs() if METHOD_INFO[cam.method_name].gradient else contextlib.nullcontext():
        archive.add_endpoint("explain", explain, input_signature=[
            tf.TensorSpec([1, height, width, 3], tf.uint8, name="image"),
            tf.TensorSpec([1, maps], tf.int32, name="target")])
        archive.write_out(str(folder), verbose=False)


def to_tflite(cam: CAM, precision: str = "f32", maps: int = 1) -> bytes:
    """The explainer as a ``.tflite`` flatbuffer that LiteRT's built-in ops run."""
    tf = cam._tf
    folder = Path(tempfile.mkdtemp(prefix="stream_cam_export_"))
    try:
        save_archive(cam, folder, precision, maps)
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


def compare_with_engine(cam: CAM, path: Path, image: np.ndarray) -> tuple[int, int, float]:
    """The written file on LiteRT against the engine on ``image``: (engine's top class, the file's,
    how far apart the top class's maps are at most)."""
    from .litert import LiteRTExplainer

    ours, theirs = cam(image), LiteRTExplainer(path, 1)(image)
    return (int(ours.class_indices[0]), int(theirs.class_indices[0]),
            float(np.abs(ours.heatmaps - theirs.heatmaps).max()))
