"""One source of a live run: its reader thread, class choice and smoother, HUD, recording and
browser hub, and how one of its frames becomes the annotated picture on screen."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ..engine.motion import MotionCompensator
from ..engine.stream import ClassChoice, StreamChoice
from ..frames import Explanation, Frame, short_label
from ..render.hud import HudState
from ..render.screens import idle_screen
from ..sinks.recorder import Recorder
from ..sources.latest import LatestFrames
from .pipeline import Look, StreamView

if TYPE_CHECKING:
    from .controls import Controls

FPS_SMOOTHING = 0.9
THUMBS_KEPT = 120  # motion thumbnails of recent frames, per stream (a heatmap older than this is not moved)


@dataclass
class LiveStream:
    """Everything one source of a live run owns."""

    index: int
    source: LatestFrames
    choice: StreamChoice
    recorder: Recorder
    view: StreamView
    recording_path: Path | None = None
    last_shown: np.ndarray | None = None  # the newest picture on the window (with the operator's overlays)
    last_clean: np.ndarray | None = None  # the same without them: what a snapshot saves
    shown: int = 0
    fps: float = 0.0
    last_time: float = 0.0
    ages: list[int] = field(default_factory=list)  # heatmap age (frames) of every shown frame
    latencies_ms: list[float] = field(default_factory=list)
    _thumbs: OrderedDict = field(default_factory=OrderedDict)  # frame index -> motion thumbnail

    @property
    def hud(self) -> HudState:
        return self.view.hud

    def remember(self, frame: Frame, motion: MotionCompensator) -> np.ndarray | None:
        """Keep ``frame``'s motion thumbnail, for moving later heatmaps computed on it."""
        thumb = motion.thumbnail(frame.image)
        if thumb is not None:
            self._thumbs[frame.index] = thumb
            while len(self._thumbs) > THUMBS_KEPT:
                self._thumbs.popitem(last=False)
        return thumb

    def heatmap_for(self, frame: Frame, explanation: Explanation, motion: MotionCompensator,
                    thumb: np.ndarray | None) -> np.ndarray:
        """The heatmap to show on ``frame``: the explanation's, moved along the motion since it was computed."""
        if explanation.frame.index == frame.index:
            return explanation.heatmap
        return motion.warp(explanation.heatmap, self._thumbs.get(explanation.frame.index), thumb)

    def count_shown(self, now: float, latency_ms: float, age: int) -> None:
        self.shown += 1
        self.latencies_ms.append(latency_ms)
        self.ages.append(age)
        if self.last_time:
            interval = now - self.last_time
            current = 1.0 / interval if interval > 0 else self.fps
            self.fps = current if self.fps == 0 else FPS_SMOOTHING * self.fps + (1 - FPS_SMOOTHING) * current
        self.last_time = now

    def look(self, controls: Controls, hud_scale: float, legend: bool, operator: bool) -> Look:
        return Look(controls.alpha, controls.colormap, controls.show_hud, controls.show_keys, hud_scale, legend,
                    operator=operator)

    def fill_hud(self, explanation: Explanation, age: int, controls: Controls) -> None:
        """What the HUD says beside the classes: fps, recording, paused, trust, the heatmap's age."""
        hud = self.hud
        hud.fps, hud.source = self.fps, shown_source(self.source.info.source)
        hud.recording = self.recording_path is not None
        hud.paused = controls.paused
        if explanation.trust is not None:
            hud.trust = explanation.trust  # kept until the next measurement
        hud.extra = [f"heatmap {age} frame{'s' if age != 1 else ''} old"] if age > 0 else []

    def reconnecting_screen(self, controls: Controls, hud_scale: float) -> np.ndarray:
        """The idle picture of a lost source while it is reopened (the other sources keep running)."""
        info = self.source.info
        height, width = self.last_shown.shape[:2] if self.last_shown is not None else (info.height or 480,
                                                                                        info.width or 640)
        detail = f"{info.source}: attempt {self.source.failures}" + (
            f" ({self.source.last_error})" if self.source.last_error else "")
        return idle_screen(width, height, "reconnecting...", detail[:90], controls.colormap,
                           self.hud.explained_label, hud_scale)

    def live_state(self, explanation: Explanation, latency_ms: float, controls: Controls,
                   label: Callable[[int], str]) -> dict[str, Any]:
        """What the browser view shows of a live run beside the explanation (see FramePipeline.view_state)."""
        return dict(fps=round(self.fps, 2), latency_ms=round(latency_ms, 1), paused=controls.paused,
                    recording=self.recording_path is not None, status=self.hud.current_status(),
                    choice=choice_state(self.choice.choice, label), stream=self.index,
                    heatmap_frame=explanation.frame.index, methods=list(controls.methods))


def shown_source(source: str) -> str:
    """What the HUD calls a source: a file by its name only (never a local path), a camera or a
    URL as the reader gives it (already without passwords)."""
    return source if "://" in source or not Path(source).name else Path(source).name


def choice_state(choice: ClassChoice, label: Callable[[int], str]) -> dict:
    """What is being explained, as the controls say now (the next frame will show it)."""
    described = choice.describe()
    if "class" in described:
        described["label"] = short_label(label(described["class"]))
    return described
