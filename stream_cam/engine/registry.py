"""The CAM methods, one row each, light on purpose (no TensorFlow): the CLI's choices, the live
method switch (window key, page menu, /control), export and evaluate read this table;
:data:`stream_cam.engine.methods.METHODS` maps each row's class name to the class."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MethodInfo:
    name: str  # what the CLI, the page and the log call it
    class_name: str  # its class in stream_cam.engine.methods
    gradient: bool  # needs the class score's gradient (EigenCAM and Score-CAM do not)
    exportable: bool  # has a LiteRT form (EigenCAM's SVD has none)
    attention: bool  # follows a transformer's attention (refuses CNNs and Swin)


METHOD_TABLE: tuple[MethodInfo, ...] = (
    MethodInfo("gradcam", "GradCAM", gradient=True, exportable=True, attention=False),
    MethodInfo("gradcam++", "GradCAMPlusPlus", gradient=True, exportable=True, attention=False),
    MethodInfo("xgradcam", "XGradCAM", gradient=True, exportable=True, attention=False),
    MethodInfo("layercam", "LayerCAM", gradient=True, exportable=True, attention=False),
    MethodInfo("hirescam", "HiResCAM", gradient=True, exportable=True, attention=False),
    MethodInfo("eigencam", "EigenCAM", gradient=False, exportable=False, attention=False),
    MethodInfo("scorecam", "ScoreCAM", gradient=False, exportable=True, attention=False),
    MethodInfo("relevance", "AttentionRelevance", gradient=True, exportable=True, attention=True),
    MethodInfo("rollout", "AttentionRollout", gradient=False, exportable=True, attention=True),
)
METHOD_INFO = {m.name: m for m in METHOD_TABLE}
METHOD_NAMES = tuple(METHOD_INFO)
CNN_METHODS = tuple(m.name for m in METHOD_TABLE if not m.attention)
TRANSFORMER_METHODS = tuple(m.name for m in METHOD_TABLE if m.attention)
EXPORTABLE = tuple(m.name for m in METHOD_TABLE if m.exportable)
DEFAULT_METHOD = "gradcam"
# On the known-answer test (tests/test_transformers.py) rollout put the peak on the evidence in every
# unseen image, gradient-weighted relevance in 44-80%, Grad-CAM on tokens in 17-37%: rollout is the default,
# relevance the class-specific choice (README, "Transformers").
DEFAULT_TRANSFORMER_METHOD = "rollout"
# What runs an explainer (engine/runtime.py): auto = LiteRT on a CPU when it can, else TensorFlow.
RUNTIMES = ("auto", "tensorflow", "litert")
DEFAULT_RUNTIME = "auto"
DEFAULT_SCORE_CHANNELS = 32  # Score-CAM's channel limit (Faster-Score-CAM); 0 = every channel


def methods_for(attends: bool) -> tuple[str, ...]:
    """What a model offers: every method on a transformer whose attention is read (the CAM family on
    its token map), the CAM family on a CNN and on Swin (its last stage's tokens)."""
    return METHOD_NAMES if attends else CNN_METHODS


def default_method(attends: bool) -> str:
    return DEFAULT_TRANSFORMER_METHOD if attends else DEFAULT_METHOD
