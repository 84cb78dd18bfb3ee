"""stream_cam: real-time Grad-CAM explanations for image classifiers.

Public API (imported lazily, so ``import stream_cam`` is instant)::

    import stream_cam
    model = stream_cam.load_model()              # offline EfficientNet-Lite0
    cam = stream_cam.GradCAM(model)
    result = cam(rgb_frame)                      # uint8 RGB, any size
    shown = stream_cam.overlay_heatmap(rgb_frame, result.heatmaps[0])  # RGB (bgr=True for OpenCV)
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "load_model": "stream_cam.models.loader",
    "LoadedModel": "stream_cam.models.loaded",
    "GradCAM": "stream_cam.engine.gradcam",
    "GradCAMPlusPlus": "stream_cam.engine.gradcam",
    "XGradCAM": "stream_cam.engine.methods",
    "LayerCAM": "stream_cam.engine.methods",
    "HiResCAM": "stream_cam.engine.methods",
    "EigenCAM": "stream_cam.engine.methods",
    "ScoreCAM": "stream_cam.engine.methods",
    "AttentionRelevance": "stream_cam.engine.attention",
    "AttentionRollout": "stream_cam.engine.attention",
    "METHODS": "stream_cam.engine.methods",
    "CAM": "stream_cam.engine.gradcam",
    "CAMResult": "stream_cam.engine.explainer",
    "overlay_heatmap": "stream_cam.render.overlay",
    "colormap_lut": "stream_cam.render.colormap",
    "read_image": "stream_cam.sources.images",
    "StreamCamError": "stream_cam.errors",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'stream_cam' has no attribute {name!r}")
