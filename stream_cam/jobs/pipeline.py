"""The one path of a frame, for every runner: explain -> draw -> sinks (:class:`FramePipeline`).

The runners only decide where frames come from and how fast:

- live (:mod:`.live`): the newest frame of each source goes to a background thread that calls
  :meth:`FramePipeline.explain` for all sources at once; EVERY frame a source delivers is drawn
  with the newest heatmap (moved along the motion) by :meth:`~FramePipeline.annotate` and handed
  on by :meth:`~FramePipeline.deliver`;
- a video file (:mod:`.video`): every frame in order, a batch at a time, through
  :meth:`~FramePipeline.process` (each frame with its own heatmap), then ``deliver``;
- a Ray worker (:mod:`.ray_worker`): a chunk's frames through ``process``, after a warm-up; what it
  delivers goes back to the driver instead of to local sinks.

:class:`Look` is how the picture is drawn (alpha, colormap, HUD, key help, legend, time code),
:class:`StreamView` is one stream's drawing state (HUD, stability meter, browser hub)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from .. import defaults
from ..engine.stream import StreamChoice, StreamExplainer
from ..frames import Explanation, Frame
from ..pixels import StabilityMeter
from ..render.frame import render_frame
from ..render.hud import HudState
from ..render.screens import draw_legend
from ..sinks.worker import Annotated
from ..web.broadcast import Broadcaster
from ..web.state import ViewState

if TYPE_CHECKING:  # the engine's module loads TensorFlow; the checks before it must not
    from ..engine.explainer import Explains


@dataclass
class Look:
    alpha: float = defaults.ALPHA
    colormap: str = defaults.COLORMAP
    hud: bool = True
    keys: bool = False  # the key help (live)
    hud_scale: float = 1.0
    legend: bool = False  # the colour legend (kiosk)
    time_code: bool = False  # the frame's position in the file (video files)


@dataclass
class StreamView:
    """What one stream is drawn with: its HUD, its stability meter and its browser hub (if served)."""

    hud: HudState = field(default_factory=HudState)
    meter: StabilityMeter = field(default_factory=StabilityMeter)
    hub: Broadcaster | None = None
    index: int = 0  # which source, when there are several


class FramePipeline:
    """explain (one engine call per batch) -> draw -> the sinks (``put``) and the browser hub."""

    def __init__(self, explainer: StreamExplainer, label: Callable[[int], str],
                 put: Callable[[Annotated], None] | None = None) -> None:
        self.explainer = explainer
        self.label = label
        self.put = put

    def prepare(self, image: np.ndarray) -> np.ndarray:
        """One BGR frame -> its model input; safe to call from a reader thread."""
        return self.explainer.prepare(image)

    def use(self, cam: Explains, streams: Sequence[StreamChoice] = ()) -> None:
        """Explain with ``cam`` from now on (a live method switch)."""
        self.explainer.use(cam, streams)

    def explain(self, frames: Sequence[Frame], streams: Sequence[StreamChoice] | None = None) -> list[Explanation]:
        """Consecutive frames of one stream, or (``streams``) one frame of each of several; one engine call."""
        if streams is None:
            return self.explainer.explain(frames)
        return self.explainer.explain_streams(frames, streams)

    def annotate(self, frame: Frame, explanation: Explanation, heatmap: np.ndarray, view: StreamView, look: Look,
                 timings: dict[str, float]) -> Annotated:
        """``frame`` drawn with ``heatmap`` (the explanation's own, or moved to ``frame``) and the HUD."""
        start = time.perf_counter()
        hud = view.hud
        hud.set_classes(explanation.top, explanation.class_index, self.label)
        hud.method, hud.runtime, hud.device = explanation.method, explanation.runtime, explanation.device
        if look.time_code:
            hud.time_code = frame.timestamp
        image = render_frame(frame.image, heatmap, look.alpha, look.colormap, hud if look.hud else None, look.keys,
                             look.hud_scale)
        if look.legend and look.hud:
            draw_legend(image, look.colormap, hud.explained_label, look.hud_scale)
        timings["render"] = (time.perf_counter() - start) * 1000
        stability = view.meter.update(explanation.frame.index, explanation.class_index, explanation.heatmap)
        return Annotated(image, explanation, timings, frame=frame, stream=view.index, heatmap=heatmap,
                         stability=stability)

    def process(self, frames: Sequence[Frame], view: StreamView, look: Look) -> list[Annotated]:
        """Frames of one stream, in order, each drawn with its own heatmap (video files, Ray chunks)."""
        start = time.perf_counter()
        explanations = self.explain(frames)
        engine_ms = (time.perf_counter() - start) * 1000 / max(len(frames), 1)
        # Drawn here, not in the writer thread: measured as fast or faster on 2 cores.
        return [self.annotate(e.frame, e, e.heatmap, view, look, {"capture": 0.0, "engine": engine_ms})
                for e in explanations]

    def deliver(self, item: Annotated, view: StreamView, look: Look, **live: Any) -> None:
        """``item`` to the sinks (recording, log, results) and to the stream's browser view."""
        if self.put is not None:
            self.put(item)
        if view.hub is not None and item.image is not None:
            state = self.view_state(item.explanation, item.shown.index, view, look, **live)
            view.hub.publish(item.image, state.as_dict(), raw=item.shown.image)

    def view_state(self, explanation: Explanation, frame: int, view: StreamView, look: Look,
                   **live: Any) -> ViewState:
        """What the page shows for ``frame``, drawn with ``explanation``; ``live``: the live run's extras
        (fps, latency, paused, recording, status, choice, stream, heatmap_frame, methods)."""
        score = explanation.score
        return ViewState(frame=frame, top=explanation.top_entries(self.label),
                         explained={"index": explanation.class_index, "label": view.hud.explained_label,
                                    "score": None if score is None else round(score, 4)},
                         alpha=look.alpha, colormap=look.colormap, source=view.hud.source, method=explanation.method,
                         runtime=explanation.runtime, device=explanation.device, **live)
