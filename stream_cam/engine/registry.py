"""The CAM methods' names, light on purpose (no TensorFlow): the CLI's choices and the live
method switch use them; :data:`stream_cam.engine.methods.METHODS` maps them to classes."""

from __future__ import annotations

METHOD_NAMES = ("gradcam", "gradcam++", "xgradcam", "layercam", "hirescam", "eigencam", "scorecam")
DEFAULT_METHOD = "gradcam"
DEFAULT_SCORE_CHANNELS = 32  # Score-CAM's channel limit (Faster-Score-CAM); 0 = every channel
