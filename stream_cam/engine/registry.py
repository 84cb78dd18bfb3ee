"""The CAM methods' names, light on purpose (no TensorFlow): the CLI's choices and the live
method switch use them; :data:`stream_cam.engine.methods.METHODS` maps them to classes."""

from __future__ import annotations

CNN_METHODS = ("gradcam", "gradcam++", "xgradcam", "layercam", "hirescam", "eigencam", "scorecam")
TRANSFORMER_METHODS = ("relevance", "rollout")  # follow attention: transformers only
METHOD_NAMES = (*CNN_METHODS, *TRANSFORMER_METHODS)
DEFAULT_METHOD = "gradcam"
# On the known-answer test (tests/test_transformers.py) rollout put the peak on the evidence in every
# unseen image, gradient-weighted relevance in 44-80%, Grad-CAM on tokens in 17-37%: rollout is the default,
# relevance the class-specific choice (README, "Transformers").
DEFAULT_TRANSFORMER_METHOD = "rollout"


def methods_for(attends: bool) -> tuple[str, ...]:
    """What a model offers: every method on a transformer whose attention is read (the CAM family on
    its token map), the CAM family on a CNN and on Swin (its last stage's tokens)."""
    return METHOD_NAMES if attends else CNN_METHODS


def default_method(attends: bool) -> str:
    return DEFAULT_TRANSFORMER_METHOD if attends else DEFAULT_METHOD
DEFAULT_SCORE_CHANNELS = 32  # Score-CAM's channel limit (Faster-Score-CAM); 0 = every channel
