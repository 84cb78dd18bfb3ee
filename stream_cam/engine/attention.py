"""Explanations that follow a transformer's attention, in the same compiled pass as the CAM family.

Both read the attention probabilities ``A`` (N, heads, T, T) of every block, first block first,
that :class:`~.tokens.TokenTap` keeps from the forward pass, and end with the relevance of each
patch token to the class token (its row of ``R``), on the patch grid. Models without a class
token (mean pooling) take the mean over the tokens' rows instead.
"""

from __future__ import annotations

from typing import Any

from ..errors import ModelError
from .gradcam import CAM


class TransformerMethod(CAM):
    """The shared last step: a token-by-token relevance ``R`` (N, T, T) -> the (N, h, w) map."""

    transformer_only = True

    def relevance(self, grads: Any) -> Any:
        raise NotImplementedError

    def class_map(self, grads: Any, activations: Any, images: Any, classes: Any) -> Any:
        tf = self._tf
        layout = self.model.tokens
        if layout is None:  # CAM.__init__ refuses a model without tokens for a transformer-only method
            raise ModelError(f"{self.method_name} needs a transformer's tokens")
        relevance = self.relevance(grads)
        if layout.pooling == "token":
            row = relevance[:, 0, layout.prefix:]  # what the class token took from each patch
        else:
            tokens = tf.shape(relevance)[-1]
            row = tf.reduce_mean(relevance - tf.eye(tokens), axis=1)  # no class token: every token's row
        # Relevance is >= 0 everywhere and every patch gets some through the residual path: the map is
        # measured from its lowest patch (as Chefer et al. show it), so the floor does not hide the peak.
        row = row - tf.reduce_min(row, axis=1, keepdims=True)
        return tf.reshape(row, [-1, *layout.grid])


class AttentionRelevance(TransformerMethod):
    """Gradient-weighted attention relevance (Chefer, Gur & Wolf, ICCV 2021, "Generic Attention-model
    Explainability"): R = I; for each block, R += mean over heads of relu(dY/dA * A) @ R.

    Class-specific (the gradient is the explained class's logit's), and on a ViT trained where the
    evidence's place is known it put the peak on the evidence every time (FACTS §13; the test
    suite's known-answer test repeats that)."""

    method_name = "relevance"

    def gradients(self, tape: Any, score: Any, activations: Any) -> Any:
        return tape.gradient(score, self._cam_model.attention)

    def relevance(self, grads: Any) -> Any:
        tf = self._tf
        attention = self.float32(self._cam_model.attention)
        tokens = tf.shape(attention[0])[-1]
        relevance = tf.eye(tokens, batch_shape=[tf.shape(attention[0])[0]])
        for probabilities, gradient in zip(attention, grads):
            weighted = tf.reduce_mean(tf.nn.relu(gradient * probabilities), axis=1)  # (N, T, T)
            relevance = relevance + tf.matmul(weighted, relevance)
        return relevance


class AttentionRollout(TransformerMethod):
    """Attention rollout (Abnar & Zuidema, ACL 2020): each block's head-averaged attention, mixed
    half-and-half with the identity for the residual path and renormalised by rows, multiplied
    through the blocks. No gradient: the same map for every class (a cheap baseline)."""

    method_name = "rollout"
    uses_gradients = False

    def relevance(self, grads: Any) -> Any:
        tf = self._tf
        attention = self.float32(self._cam_model.attention)
        tokens = tf.shape(attention[0])[-1]
        identity = tf.eye(tokens, batch_shape=[tf.shape(attention[0])[0]])
        rollout = identity
        for probabilities in attention:
            mixed = 0.5 * tf.reduce_mean(probabilities, axis=1) + 0.5 * identity
            mixed = mixed / tf.reduce_sum(mixed, axis=-1, keepdims=True)
            rollout = tf.matmul(mixed, rollout)
        return rollout
