"""The defaults more than one part reads, written once: the CLI's help, the option classes, the
renderer, the live controls and the browser's state all take them from here."""

from __future__ import annotations

import os
from pathlib import Path

ALPHA = 0.4  # the heatmap's weight in the blend (the keras.io example's value)
COLORMAP = "jet"  # the keras.io example's colormap
RENDERS = ("auto", "host", "device")  # --render: where the heatmap is drawn (jobs/pipeline.py)
RENDER = "auto"  # the device (in the compiled graph) on a GPU; the host (OpenCV) on a CPU, measured faster there
MOTION = "shift"  # how a stale live heatmap is moved; measured best: README, "Motion compensation"

CACHE_ENV = "STREAM_CAM_CACHE"  # where converted runtimes are kept, when set


def cache_folder() -> Path:
    """``$STREAM_CAM_CACHE``, else ``$XDG_CACHE_HOME/stream_cam``, else ``~/.cache/stream_cam``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "stream_cam"
