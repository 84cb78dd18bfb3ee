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
