"""The CAM family, each method one small subclass of :class:`~stream_cam.engine.gradcam.CAM`,
all computed in the same compiled graph, with the same prediction pass.

``METHODS`` maps each CLI name to its class; ``METHODS[name](model)`` is used exactly like
``GradCAM(model)``. Formulas follow the papers; where implementations differ, the one named
in each docstring is the one implemented and tested (tests/reference_cams.py).
"""

from __future__ import annotations

from typing import Any

from ..errors import InputError
from .attention import AttentionRelevance, AttentionRollout
from .gradcam import CAM, GradCAM, GradCAMPlusPlus
from .registry import DEFAULT_SCORE_CHANNELS, METHOD_TABLE

SCORE_CAM_CHUNK = 32  # masked images per forward pass inside Score-CAM


class XGradCAM(CAM):
    """XGrad-CAM (Fu et al. 2020): w_c = sum_ij (A_ij / sum_ab A_ab) * dY/dA_ij."""

    method_name = "xgradcam"

    def channel_weights(self, grads: Any, activations: Any) -> Any:
        tf = self._tf
        total = tf.reduce_sum(activations, axis=[1, 2], keepdims=True)
        share = tf.math.divide_no_nan(activations, total)
        return tf.reduce_sum(share * grads, axis=[1, 2])


class LayerCAM(CAM):
    """LayerCAM (Jiang et al. 2021): map = sum_c relu(dY/dA_ij^c) * A_ij^c, position by position."""

    method_name = "layercam"

    def class_map(self, grads: Any, activations: Any, images: Any, classes: Any) -> Any:
        return self._tf.reduce_sum(self._tf.nn.relu(grads) * activations, axis=-1)


class HiResCAM(CAM):
    """HiResCAM (Draelos & Carin 2020): map = sum_c dY/dA_ij^c * A_ij^c (no spatial averaging)."""

    method_name = "hirescam"

    def class_map(self, grads: Any, activations: Any, images: Any, classes: Any) -> Any:
        return self._tf.reduce_sum(grads * activations, axis=-1)


class EigenCAM(CAM):
    """EigenCAM (Muhammad & Yeasin 2020): the activations, centred over positions, projected on
    their first principal component (as pytorch-grad-cam's ``get_2d_projection``). Class-agnostic,
    no gradient.

    A singular vector's sign is arbitrary, and would flip the map from one frame to the next.
    It is fixed so the map correlates positively with the mean activation over channels (where
    the layer is active overall is "hot")."""

    method_name = "eigencam"

    uses_gradients = False

    def class_map(self, grads: Any, activations: Any, images: Any, classes: Any) -> Any:
        tf = self._tf
        shape = tf.shape(activations)
        flat = tf.reshape(activations, [shape[0], shape[1] * shape[2], shape[3]])  # (N, hw, c)
        centred = flat - tf.reduce_mean(flat, axis=1, keepdims=True)
        _, _, v = tf.linalg.svd(centred, full_matrices=False)  # v: (N, c, min(hw, c))
        projection = tf.einsum("npc,nc->np", centred, v[:, :, 0])  # (N, hw)
        energy = tf.reduce_mean(flat, axis=2)
        energy -= tf.reduce_mean(energy, axis=1, keepdims=True)
        sign = tf.where(tf.reduce_sum(projection * energy, axis=1, keepdims=True) < 0.0, -1.0, 1.0)
        return tf.reshape(projection * sign, shape[:3])


class ScoreCAM(CAM):
    """Score-CAM (Wang et al. 2020), batched: each channel's map, upsampled and scaled to [0, 1],
    masks the input; the masked inputs of a frame go through the model in batches; the
    channel weights are the softmax over channels of the class's logit on each masked input
    (pytorch-grad-cam's formulation). No gradient.

    ``max_channels`` keeps only the N channels of highest spatial variance (Faster-Score-CAM,
    as tf-keras-vis' ``max_N``): the cost is one forward pass per kept channel."""

    method_name = "scorecam"

    uses_gradients = False

    def __init__(self, model: Any, layer: str | None = None, *, max_channels: int | None = 32, **kwargs: Any) -> None:
        self.max_channels = max_channels
        super().__init__(model, layer, **kwargs)

    def class_map(self, grads: Any, activations: Any, images: Any, classes: Any) -> Any:
        tf = self._tf
        channels = int(activations.shape[-1])
        kept = channels if not self.max_channels else min(self.max_channels, channels)
        if kept < channels:  # Faster-Score-CAM: the channels whose maps vary most
            variance = tf.math.reduce_variance(activations, axis=[1, 2])
            order = tf.math.top_k(variance, k=kept).indices
            activations = tf.gather(activations, order, axis=3, batch_dims=1)
        height, width = self.model.input_size
        up = tf.image.resize(activations, (height, width), method="bilinear")  # (N, H, W, K)
        low = tf.reduce_min(up, axis=[1, 2], keepdims=True)
        high = tf.reduce_max(up, axis=[1, 2], keepdims=True)
        masks = tf.math.divide_no_nan(up - low, high - low)
        scores = []
        for start in range(0, kept, SCORE_CAM_CHUNK):
            chunk = masks[..., start:start + SCORE_CAM_CHUNK]  # (N, H, W, k)
            k = int(chunk.shape[-1])
            masked = images[:, None] * tf.transpose(chunk, [0, 3, 1, 2])[..., None]  # (N, k, H, W, 3)
            _, head_input = self._cam_model(tf.reshape(masked, [-1, height, width, 3]), training=False)
            logits = tf.reshape(self.float32(self._head.logits(head_input)), [-1, k, self.num_classes])
            scores.append(tf.gather(logits, classes, axis=2, batch_dims=1))  # (N, k)
        weights = tf.nn.softmax(tf.concat(scores, axis=1), axis=1)
        return tf.einsum("nhwk,nk->nhw", activations, weights)


_CLASSES: dict[str, type[CAM]] = {cls.__name__: cls for cls in (
    GradCAM, GradCAMPlusPlus, XGradCAM, LayerCAM, HiResCAM, EigenCAM, ScoreCAM, AttentionRelevance, AttentionRollout)}
METHODS: dict[str, type[CAM]] = {m.name: _CLASSES[m.class_name] for m in METHOD_TABLE}  # the registry's order


def build_method(name: str, model: Any, *, jit_compile: bool = False,
                 score_channels: int | None = DEFAULT_SCORE_CHANNELS) -> CAM:
    """``METHODS[name](model)``, with Score-CAM's channel limit where it applies."""
    if name not in METHODS:
        raise InputError(f"unknown method {name!r}; choose one of: {', '.join(METHODS)}")
    if METHODS[name] is ScoreCAM:
        return ScoreCAM(model, max_channels=score_channels or None, jit_compile=jit_compile)
    return METHODS[name](model, jit_compile=jit_compile)
