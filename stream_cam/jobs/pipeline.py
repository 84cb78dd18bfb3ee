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
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from .. import defaults
from ..engine.stream import StreamChoice, StreamExplainer
from ..frames import Explanation, Frame, score_value
from ..pixels import StabilityMeter
from ..errors import InputError
from ..render.colormap import colormap_lut
from ..render.frame import decorate
from ..render.overlay import overlay_heatmap
from ..render.hud import HudState
from ..render.screens import draw_legend
from ..sinks.worker import Annotated
from ..web.broadcast import Broadcaster
from ..web.state import ViewState

if TYPE_CHECKING:  # the engine's module loads TensorFlow; the checks before it must not
    from ..engine.device_frames import DeviceFramePath
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
    operator: bool = False  # a window's viewer: a second picture with REC, messages and the key list


@dataclass
class StreamView:
    """What one stream is drawn with: its HUD, its stability meter and its browser hub (if served)."""

    hud: HudState = field(default_factory=HudState)
    meter: StabilityMeter = field(default_factory=StabilityMeter)
    hub: Broadcaster | None = None
    index: int = 0  # which source, when there are several


def frame_path_for(cam: Explains, render: str) -> DeviceFramePath | None:
    """``--render``: None draws on the host (OpenCV); a :class:`DeviceFramePath` resizes, explains,
    colours and blends inside the engine's compiled graph (``device``, and ``auto`` on a GPU)."""
    if render not in defaults.RENDERS:
        raise InputError(f"--render {render}: choose one of {', '.join(defaults.RENDERS)}")
    if render == "host" or (render == "auto" and not cam.device.startswith("gpu")):
        return None
    from ..engine.device_frames import DeviceFramePath
    from ..engine.gradcam import CAM

    if not isinstance(cam, CAM):
        if render == "auto":
            return None
        raise InputError(f"--render device draws inside the TensorFlow engine's graph; this run explains on "
                         f"{cam.runtime} (use --runtime tensorflow)")
    # One per engine: its graphs are traced once per frame size, not once per video of a job.
    if cam not in _DEVICE_PATHS:
        _DEVICE_PATHS[cam] = DeviceFramePath(cam)
    return _DEVICE_PATHS[cam]


_DEVICE_PATHS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # engine -> its DeviceFramePath


class FramePipeline:
    """explain (one engine call per batch) -> draw -> the sinks (``put``) and the browser hub.

    ``frame_path`` (``--render device``): the heatmap is blended inside a compiled graph, and a
    video's frames with their own heatmaps are explained AND drawn by one call (only the HUD's text
    is drawn here)."""

    def __init__(self, explainer: StreamExplainer, label: Callable[[int], str],
                 put: Callable[[Annotated], None] | None = None, frame_path: DeviceFramePath | None = None) -> None:
        self.explainer = explainer
        self.label = label
        self.put = put
        self.frame_path = frame_path

    @property
    def render(self) -> str:
        """Where frames are drawn: "device" or "host"."""
        return "host" if self.frame_path is None else "device"

    def _fused(self) -> bool:
        """Whether ``process`` explains and draws in one device call: each frame drawn with its own raw
        heatmap (no smoothing) by the engine the graph was built for."""
        return (self.frame_path is not None and self.explainer.smoother.strength == 0
                and self.frame_path.cam is self.explainer.cam)

    def prepare(self, image: np.ndarray) -> np.ndarray | None:
        """One BGR frame -> its model input (none when the device makes it); safe from a reader thread."""
        return None if self._fused() else self.explainer.prepare(image)

    def use(self, cam: Explains, streams: Sequence[StreamChoice] = ()) -> None:
        """Explain with ``cam`` from now on (a live method switch)."""
        self.explainer.use(cam, streams)

    def explain(self, frames: Sequence[Frame], streams: Sequence[StreamChoice] | None = None) -> list[Explanation]:
        """Consecutive frames of one stream, or (``streams``) one frame of each of several; one engine call."""
        if streams is None:
            return self.explainer.explain(frames)
        return self.explainer.explain_streams(frames, streams)

    def annotate(self, frame: Frame, explanation: Explanation, heatmap: np.ndarray, view: StreamView, look: Look,
                 timings: dict[str, float], blended: np.ndarray | None = None) -> Annotated:
        """``frame`` drawn with ``heatmap`` (the explanation's own, or moved to ``frame``) and the HUD;
        ``blended``: the frame with that heatmap already blended on (by the device)."""
        start = time.perf_counter()
        hud = view.hud
        hud.set_classes(explanation.top, explanation.class_index, self.label, explanation.score)
        hud.method, hud.runtime, hud.device = explanation.method, explanation.runtime, explanation.device
        if look.time_code:
            hud.time_code = frame.timestamp
        if blended is None and self.frame_path is not None:
            blended = self.frame_path.blend(frame.image, heatmap, look.alpha, colormap_lut(look.colormap))
        elif blended is None:
            blended = overlay_heatmap(frame.image, heatmap, look.alpha, look.colormap, bgr=True)
        shown_hud = hud if look.hud else None
        # What is recorded, saved and served: the explanation and the HUD, not the operator's overlays.
        # The window gets a picture of its own only while it shows any (keys, REC, a message).
        own = look.operator and (look.keys or hud.recording or bool(hud.current_status()))
        image = decorate(blended.copy() if own else blended, shown_hud, look.hud_scale)
        screen = decorate(blended, shown_hud, look.hud_scale, operator=True, show_keys=look.keys) if own else None
        if look.legend and look.hud:
            for picture in (image, screen):
                if picture is not None:
                    draw_legend(picture, look.colormap, hud.explained_label, look.hud_scale)
        timings["render"] = (time.perf_counter() - start) * 1000
        stability = view.meter.update(explanation.frame.index, explanation.class_index, explanation.heatmap)
        return Annotated(image, explanation, timings, frame=frame, stream=view.index, heatmap=heatmap,
                         stability=stability, screen=screen)

    def process(self, frames: Sequence[Frame], view: StreamView, look: Look) -> list[Annotated]:
        """Frames of one stream, in order, each drawn with its own heatmap (video files, Ray chunks)."""
        start = time.perf_counter()
        drawn: list[np.ndarray | None] = [None] * len(frames)
        if self._fused() and frames and len({f.image.shape for f in frames}) == 1:
            explanations, drawn = self._explain_and_draw(frames, look)  # type: ignore[assignment]
        else:
            explanations = self.explain(frames)
        engine_ms = (time.perf_counter() - start) * 1000 / max(len(frames), 1)
        # Drawn here, not in the writer thread: measured as fast or faster on 2 cores.
        return [self.annotate(e.frame, e, e.heatmap, view, look, {"capture": 0.0, "engine": engine_ms}, image)
                for e, image in zip(explanations, drawn)]

    def _explain_and_draw(self, frames: Sequence[Frame], look: Look) -> tuple[list[Explanation], np.ndarray]:
        """One device call: the frames as decoded in, their explanations and blended frames out."""
        assert self.frame_path is not None
        path, images, out = self.frame_path, np.stack([f.image for f in frames]), {}

        def call(targets: np.ndarray) -> Any:
            out["drawn"], result = path(images, targets, colormap_lut(look.colormap), look.alpha)
            return result

        explanations = self.explainer.explain(frames, call)
        return explanations, out["drawn"]

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
                                    "score": score_value(score, 4)},
                         alpha=look.alpha, colormap=look.colormap, source=view.hud.source, method=explanation.method,
                         runtime=explanation.runtime, device=explanation.device, **live)
