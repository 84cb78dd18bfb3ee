"""The built-in demo clip: pans and zooms across real photos shipped with scikit-image.

No camera and no files needed. Each scene starts on the whole photo and glides
towards its subject, then cuts to the next photo (which also exercises the
smoother's scene-cut reset).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .images import builtin_image
from .readers import ArrayReader

WIDTH, HEIGHT, FPS = 640, 480, 30.0
SECONDS_PER_SCENE = 3.0


@dataclass(frozen=True)
class Scene:
    photo: str
    focus: tuple[float, float]  # where to zoom, as fractions of (width, height)
    zoom: float  # how far: 1.0 = whole photo, 2.0 = half of it


SCENES = (
    Scene("chelsea", (0.55, 0.45), 1.4),
    Scene("coffee", (0.5, 0.4), 1.5),
    Scene("stereo_motorcycle", (0.5, 0.55), 1.4),
    Scene("rocket", (0.45, 0.3), 1.7),
    Scene("astronaut", (0.35, 0.3), 1.6),
)


def _crop(image: np.ndarray, focus: tuple[float, float], zoom: float) -> np.ndarray:
    """The 4:3 window of ``image`` zoomed ``zoom`` times towards ``focus``, resized to the clip size."""
    h, w = image.shape[:2]
    win_w = min(w, h * WIDTH / HEIGHT) / zoom
    win_h = win_w * HEIGHT / WIDTH
    cx = np.clip(focus[0] * w, win_w / 2, w - win_w / 2)
    cy = np.clip(focus[1] * h, win_h / 2, h - win_h / 2)
    x0, y0 = int(round(cx - win_w / 2)), int(round(cy - win_h / 2))
    window = image[y0:y0 + int(win_h), x0:x0 + int(win_w)]
    return cv2.resize(window, (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)


class DemoClip:
    """``clip(i)`` is frame i (BGR) of the demo, or None after the last one."""

    def __init__(self, seconds_per_scene: float = SECONDS_PER_SCENE, fps: float = FPS) -> None:
        self.fps = fps
        self.per_scene = int(round(seconds_per_scene * fps))
        self.photos = {s.photo: cv2.cvtColor(builtin_image(s.photo), cv2.COLOR_RGB2BGR) for s in SCENES}
        self.frame_count = self.per_scene * len(SCENES)

    def __call__(self, index: int) -> np.ndarray | None:
        if not 0 <= index < self.frame_count:
            return None
        scene = SCENES[index // self.per_scene]
        t = (index % self.per_scene) / max(self.per_scene - 1, 1)
        ease = t * t * (3 - 2 * t)  # smoothstep: start and stop gently
        zoom = 1.0 + (scene.zoom - 1.0) * ease
        focus = (0.5 + (scene.focus[0] - 0.5) * ease, 0.5 + (scene.focus[1] - 0.5) * ease)
        return _crop(self.photos[scene.photo], focus, zoom)


def demo_reader(seconds_per_scene: float = SECONDS_PER_SCENE, live: bool = False) -> ArrayReader:
    clip = DemoClip(seconds_per_scene)
    return ArrayReader(clip, clip.fps, "demo", count=clip.frame_count, live=live)
