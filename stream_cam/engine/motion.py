"""Move a stale heatmap to where the content is now.

When the engine is slower than the camera, the newest heatmap was computed on an older
frame. Between that frame and the one on screen the scene moved (a pan, a walking person),
so the stale map points at where things WERE. :class:`MotionCompensator` estimates the motion
between the two frames on small grayscale thumbnails and warps the map along it:

* ``"flow"``: dense optical flow (OpenCV's DIS, ultrafast preset) at 160x120: follows
  several objects moving differently.
* ``"shift"``: one global translation (``cv2.phaseCorrelate``): a pan or a shaking camera.
* ``"off"``: the stale map as it is.

``scripts/bench_stream.py`` measures which one helps (README, "Motion compensation"): the shift,
the default, cut the error of a 10-frame-old map of an object crossing the view by 65%; flow
lost track beyond ~20 px of motion; on pans neither helped (the 7x7 map is tied to the frame's
32-pixel grid, so it does not slide with the picture).
"""

from __future__ import annotations

import cv2
import numpy as np

from ..defaults import MOTION
from ..errors import InputError

METHODS = ("flow", "shift", "off")
THUMB_SIZE = (160, 120)  # (width, height) of the motion thumbnails
MIN_SHIFT_RESPONSE = 0.1  # below this, phaseCorrelate found no clear shift: do not move


class MotionCompensator:
    """``thumbnail(frame)`` once per frame; ``warp(heatmap, old_thumb, new_thumb)`` for a stale map."""

    def __init__(self, method: str = MOTION, size: tuple[int, int] = THUMB_SIZE) -> None:
        if method not in METHODS:
            raise InputError(f"unknown motion compensation {method!r}; choose one of: {', '.join(METHODS)}")
        self.method = method
        self.size = size
        self._dis = cv2.DISOpticalFlow.create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST) if method == "flow" else None
        self._window: np.ndarray | None = None
        grid_x, grid_y = np.meshgrid(np.arange(size[0], dtype=np.float32), np.arange(size[1], dtype=np.float32))
        self._grid = (grid_x, grid_y)

    def thumbnail(self, bgr: np.ndarray) -> np.ndarray | None:
        """The small grayscale picture motion is measured on (None when compensation is off)."""
        if self.method == "off":
            return None
        gray = bgr if bgr.ndim == 2 else cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        return cv2.resize(gray, self.size, interpolation=cv2.INTER_AREA)

    def warp(self, heatmap: np.ndarray, old: np.ndarray | None, new: np.ndarray | None) -> np.ndarray:
        """``heatmap`` (computed on the frame of thumbnail ``old``) moved onto the frame of ``new``."""
        if self.method == "off" or old is None or new is None or old.shape != new.shape or old is new:
            return heatmap
        heat = cv2.resize(np.asarray(heatmap, np.float32), self.size, interpolation=cv2.INTER_LINEAR)
        if self.method == "shift":
            return self._shift(heat, old, new)
        # Backward flow: for each pixel of the NEW frame, where it was in the OLD one.
        assert self._dis is not None  # made for "flow"
        flow = self._dis.calc(new, old, None)  # type: ignore[call-overload]  # OpenCV's stubs want an array
        map_x = self._grid[0] + flow[..., 0]
        map_y = self._grid[1] + flow[..., 1]
        return cv2.remap(heat, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    def _shift(self, heat: np.ndarray, old: np.ndarray, new: np.ndarray) -> np.ndarray:
        if self._window is None:
            self._window = cv2.createHanningWindow(self.size, cv2.CV_32F)
        (dx, dy), response = cv2.phaseCorrelate(old.astype(np.float32), new.astype(np.float32), self._window)
        if response < MIN_SHIFT_RESPONSE:
            return heat
        move = np.array([[1, 0, dx], [0, 1, dy]], np.float32)
        return cv2.warpAffine(heat, move, self.size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
