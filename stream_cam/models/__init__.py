"""Models: the offline EfficientNet-Lite0, Keras applications, and users' model files.

``load_model`` and ``LoadedModel`` are imported lazily so that the light parts
(the registry of names, labels, preprocessing) do not pull in TensorFlow.
"""

from __future__ import annotations

from typing import Any

__all__ = ["load_model", "LoadedModel"]


def __getattr__(name: str) -> Any:
    if name == "load_model":
        from .loader import load_model

        return load_model
    if name == "LoadedModel":
        from .loaded import LoadedModel

        return LoadedModel
    raise AttributeError(name)
