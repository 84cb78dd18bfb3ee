"""Independent reference implementations of CAM formulas, in numpy, from eager Keras gradients.

Nothing here shares code with stream_cam's engine: activations and gradients come from a plain
eager ``GradientTape`` on the user's (unfolded) model, and the formulas are written from the papers.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


def activations_and_gradients(model, images: np.ndarray, layer: str, class_index: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, h, w, c) activations of ``layer`` and the gradient of ``class_index``'s logit w.r.t. them.

    The model's last layer must output logits (use ``without_softmax`` first)."""
    probe = keras.Model(model.inputs[0], [model.get_layer(layer).output, model.output])
    with tf.GradientTape() as tape:
        activations, logits = probe(images, training=False)
        score = logits[:, class_index]
    grads = tape.gradient(score, activations)
    return activations.numpy().astype(np.float64), grads.numpy().astype(np.float64)


def normalise(cam: np.ndarray) -> np.ndarray:
    cam = np.maximum(cam, 0.0)
    peak = cam.max(axis=(1, 2), keepdims=True)
    return np.divide(cam, peak, out=np.zeros_like(cam), where=peak > 0)


def gradcam_plus_plus(activations: np.ndarray, grads: np.ndarray) -> np.ndarray:
    """Grad-CAM++ (Chattopadhyay et al. 2018, eq. 19 with the exponential's closed form, as in
    pytorch-grad-cam): alpha = g^2 / (2 g^2 + sum_ab(A) g^3), 0 where that is undefined;
    w_c = sum_ij alpha * relu(g); map = relu(sum_c w_c A_c), scaled to [0, 1]."""
    g2, g3 = grads**2, grads**3
    total = activations.sum(axis=(1, 2), keepdims=True)
    denominator = 2.0 * g2 + total * g3
    alpha = np.divide(g2, denominator, out=np.zeros_like(g2), where=denominator != 0)
    weights = (alpha * np.maximum(grads, 0.0)).sum(axis=(1, 2))
    return normalise(np.einsum("nhwc,nc->nhw", activations, weights))


def gradcam(activations: np.ndarray, grads: np.ndarray) -> np.ndarray:
    """Grad-CAM (Selvaraju et al. 2017): w_c = mean_ij g; map = relu(sum_c w_c A_c), scaled."""
    return normalise(np.einsum("nhwc,nc->nhw", activations, grads.mean(axis=(1, 2))))


def xgradcam(activations: np.ndarray, grads: np.ndarray) -> np.ndarray:
    """XGrad-CAM (Fu et al. 2020): w_c = sum_ij A_ij / sum_ab A_ab * g_ij."""
    total = activations.sum(axis=(1, 2), keepdims=True)
    share = np.divide(activations, total, out=np.zeros_like(activations), where=total != 0)
    return normalise(np.einsum("nhwc,nc->nhw", activations, (share * grads).sum(axis=(1, 2))))


def layercam(activations: np.ndarray, grads: np.ndarray) -> np.ndarray:
    """LayerCAM (Jiang et al. 2021): sum_c relu(g) * A at each position."""
    return normalise((np.maximum(grads, 0.0) * activations).sum(axis=3))


def hirescam(activations: np.ndarray, grads: np.ndarray) -> np.ndarray:
    """HiResCAM (Draelos & Carin 2020): sum_c g * A at each position."""
    return normalise((grads * activations).sum(axis=3))


def eigencam(activations: np.ndarray, flip: bool = False) -> np.ndarray:
    """EigenCAM: centred activations projected on their first principal component; the sign
    chosen so the map correlates positively with the mean activation over channels."""
    out = []
    for a in activations:
        h, w, c = a.shape
        flat = a.reshape(h * w, c)
        centred = flat - flat.mean(axis=0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        projection = centred @ vt[0]
        energy = flat.mean(axis=1) - flat.mean()
        if ((projection * energy).sum() < 0) != flip:
            projection = -projection
        out.append(projection.reshape(h, w))
    return normalise(np.stack(out))


def scorecam(model, images: np.ndarray, layer: str, class_index: int, max_channels: int | None) -> np.ndarray:
    """Score-CAM as pytorch-grad-cam computes it: each (kept) channel, upsampled and min-max scaled,
    masks the input; weights = softmax over channels of the class logit on the masked inputs.
    ``model`` must output logits. Channels kept: highest spatial variance (Faster-Score-CAM)."""
    import cv2

    probe = keras.Model(model.inputs[0], model.get_layer(layer).output)
    activations = probe(images, training=False).numpy().astype(np.float64)
    out = []
    for image, a in zip(images, activations):
        order = np.arange(a.shape[2])
        if max_channels:
            order = np.argsort(-a.var(axis=(0, 1)), kind="stable")[:max_channels]
        a = a[..., order]
        height, width = image.shape[:2]
        masks = np.stack([cv2.resize(a[..., k].astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
                          for k in range(a.shape[2])])
        low = masks.min(axis=(1, 2), keepdims=True)
        high = masks.max(axis=(1, 2), keepdims=True)
        masks = np.divide(masks - low, high - low, out=np.zeros_like(masks), where=high > low)
        logits = model.predict(image[None] * masks[..., None], verbose=0, batch_size=32)[:, class_index]
        weights = np.exp(logits - logits.max())
        weights /= weights.sum()
        out.append(np.einsum("hwk,k->hw", a, weights))
    return normalise(np.stack(out))
