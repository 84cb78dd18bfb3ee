"""The CAM methods' names, light on purpose (no TensorFlow): the CLI's choices and the live
method switch use them; :data:`stream_cam.engine.methods.METHODS` maps them to classes."""

from __future__ import annotations

CNN_METHODS = ("gradcam", "gradcam++", "xgradcam", "layercam", "hirescam", "eigencam", "scorecam")
TRANSFORMER_METHODS = ("relevance", "rollout")  # follow attention: transformers only
METHOD_NAMES = (*CNN_METHODS, *TRANSFORMER_METHODS)
DEFAULT_METHOD = "gradcam"
DEFAULT_TRANSFORMER_METHOD = "relevance"  # Chefer et al. 2021: on the evidence where Grad-CAM on tokens is not


def methods_for(transformer: bool) -> tuple[str, ...]:
    """What a model offers: every method on a transformer (the CAM family on its token map), the CAM
    family on a CNN."""
    return METHOD_NAMES if transformer else CNN_METHODS


def default_method(transformer: bool) -> str:
    return DEFAULT_TRANSFORMER_METHOD if transformer else DEFAULT_METHOD
DEFAULT_SCORE_CHANNELS = 32  # Score-CAM's channel limit (Faster-Score-CAM); 0 = every channel
