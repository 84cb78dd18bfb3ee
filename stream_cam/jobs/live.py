"""Live mode: camera, stream or file in real time -> Grad-CAM -> window, recording, log, browser.

Threads: the capture thread keeps only the newest frame (:class:`LatestFrames`);
the main thread runs the engine, draws and shows the frame (GUI toolkits want
the main thread) and handles keys; one sink thread writes the recording and the
log from a bounded queue. Every resource is entered on one ExitStack, so every
thread is joined and the recording finalized whatever ends the run.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from ..checks import check_seconds
from ..engine.stream import ClassChoice, StreamExplainer
from ..errors import OutputError
from ..frames import Explanation, short_label
from ..models.labels import resolve_class
from ..render.frame import render_frame
from ..render.hud import HudState
from ..render.screens import draw_legend, idle_screen
from ..sinks.files import check_output_path, next_free_path, write_image
from ..sinks.recorder import Recorder
from ..sinks.video import check_codec
from ..sinks.window import Window
from ..sinks.worker import Annotated, JsonlLog, SinkThread
from ..sources.latest import LatestFrames
from ..sources.readers import Reader, open_reader
from ..web.broadcast import Broadcaster
from ..web.server import WebServer
from ..web.state import ControlChange, ViewState
from .controls import Controls
from .kiosk import KioskKeys
from .options import StreamOptions
from .signals import StopSignals

if TYPE_CHECKING:  # the engine's module loads TensorFlow; the checks before it must not
    from ..engine.gradcam import CAM

log = logging.getLogger(__name__)

DEFAULT_LIVE_SMOOTHING = 0.5
FPS_SMOOTHING = 0.9
KIOSK_HUD_SCALE = 1.6
KIOSK_PAUSE_S = 30.0
IDLE_REFRESH_S = 0.2


@dataclass
class LiveOptions(StreamOptions):
    source: str = "0"
    loop: bool = False
    record: Path | None = None
    window: bool = True
    fullscreen: bool = False
    smooth: float = DEFAULT_LIVE_SMOOTHING
    max_frames: int | None = None  # stop after this many shown frames (tests, benchmarks)
    hud_scale: float = 1.0
    snapshot_dir: Path = Path(".")
    kiosk: bool = False  # fullscreen, large HUD, legend, loops and reconnects; Esc twice quits
    cycle: float | None = None  # seconds between automatic class changes
    pause_timeout: float | None = None  # resume on its own after this many seconds (kiosk: 30)

    def __post_init__(self) -> None:
        if self.kiosk:
            self.fullscreen, self.loop = True, True
            self.hud_scale = max(self.hud_scale, KIOSK_HUD_SCALE)
            if self.pause_timeout is None:
                self.pause_timeout = KIOSK_PAUSE_S  # a stray space must not stop an unattended screen

    def validate(self) -> None:
        super().validate()
        if self.record is not None:
            check_codec(self.codec, self.record)
            check_output_path(self.record, self.overwrite)
        if self.cycle is not None:
            check_seconds(self.cycle, "--cycle")


@dataclass
class LiveStats:
    """What a run did: frames shown and dropped, latency, fps, files written."""

    shown: int = 0
    dropped: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0
    recordings: list[tuple[Path, int]] = field(default_factory=list)
    snapshots: list[Path] = field(default_factory=list)
    stopped_by: str = ""
    log_lines: int = 0

    @property
    def fps(self) -> float:
        return self.shown / self.elapsed_s if self.elapsed_s > 0 else 0.0


class LiveRun:
    """One live session. ``run()`` returns :class:`LiveStats`; everything is closed after."""

    def __init__(self, cam: CAM, options: LiveOptions, reader_factory: Callable[[], Reader] | None = None) -> None:
        options.validate()
        self.cam = cam
        self.options = options
        self._open = reader_factory or (lambda: open_reader(options.source))
        self.controls = Controls(ClassChoice(options.top_k, list(options.classes)), options.alpha, options.colormap,
                                 resolve_class=lambda spec: resolve_class(spec, cam.model.labels))
        self.explainer = StreamExplainer(cam, self.controls.choice, options.top_k, options.smooth)
        self.kiosk_keys = KioskKeys() if options.kiosk else None
        self.stats = LiveStats()
        self.fps = 0.0
        self.hud = HudState()
        self.recorder: Recorder | None = None
        self.recording_path: Path | None = None
        self.hub: Broadcaster | None = None

    def run(self) -> LiveStats:
        options = self.options
        self.cam.warm_up()  # before the source starts: no frames dropped while tracing
        reader = self._open()
        info = reader.info
        reopen = self._open if (options.loop or info.live) else None
        source = LatestFrames(reader, pace=not info.live, reopen=reopen)
        started = time.perf_counter()
        log_sink: JsonlLog | None = None
        try:
            with contextlib.ExitStack() as resources:
                resources.callback(source.close)
                source.first_frame_or_fail()
                self.recorder = Recorder(info.fps, options.codec, options.overwrite)
                if options.log is not None:
                    log_sink = JsonlLog(options.log, self.cam.model.label, options.overwrite)
                sinks = resources.enter_context(SinkThread([self.recorder, *([log_sink] if log_sink else [])]))
                if options.record is not None:
                    self._start_recording(sinks, options.record)
                if options.serve is not None:
                    self.hub = Broadcaster()
                    resources.enter_context(WebServer(options.serve, self.hub, self.apply_control, options.token))
                    print(f"browser view: {options.serve.url}", flush=True)
                window = Window(f"stream_cam - {info.source}", options.fullscreen) if options.window else None
                if window is not None:
                    resources.callback(window.close)
                stop = resources.enter_context(StopSignals())
                # Registered last, so it runs first: the run's time excludes closing the resources.
                resources.callback(self._stop_clock, started)
                self._loop(source, sinks, window, stop)
                self.stats.stopped_by = self.stats.stopped_by or stop.requested or ""
            if sinks.failure is not None:  # found while finalizing (the loop raises on earlier ones)
                raise OutputError(f"writing failed: {sinks.failure}") from sinks.failure
        finally:
            self.stats.elapsed_s = self.stats.elapsed_s or time.perf_counter() - started
            self.stats.dropped = source.dropped
            if self.recorder is not None:
                self.stats.recordings = list(self.recorder.finished)
            self.stats.log_lines = log_sink.lines if log_sink is not None else 0
        return self.stats

    def _stop_clock(self, started: float) -> None:
        self.stats.elapsed_s = time.perf_counter() - started

    def _loop(self, source: LatestFrames, sinks: SinkThread, window: Window | None, stop: StopSignals) -> None:
        controls, options = self.controls, self.options
        last_shown: np.ndarray | None = None
        last_time = time.perf_counter()
        last_cycle = last_time
        while not controls.quit and stop.requested is None:
            if options.cycle and time.perf_counter() - last_cycle >= options.cycle:
                controls.choice.cycle()
                last_cycle = time.perf_counter()
            if controls.resume_if_paused_longer_than(options.pause_timeout):
                self.hud.say("resumed")
            if controls.paused and last_shown is not None:
                self._handle_key(window.show(last_shown, 30) if window is not None else self._idle_wait(stop))
                self._apply_requests(sinks, window, last_shown)
                continue
            frame = source.get(timeout=IDLE_REFRESH_S)
            if frame is None:
                if source.ended.is_set():
                    self.stats.stopped_by = "end of stream"
                    return
                if source.reconnecting:
                    self._show_reconnecting(source, window, last_shown, stop)
                continue
            start = time.perf_counter()
            explanation = self.explainer.explain([frame])[0]
            engine_done = time.perf_counter()
            self._update_hud(explanation, source.info.source)
            shown = render_frame(frame.image, explanation.heatmap, controls.alpha, controls.colormap,
                                 self.hud if controls.show_hud else None, controls.show_keys, options.hud_scale)
            if options.kiosk and controls.show_hud:
                draw_legend(shown, controls.colormap, self.hud.explained_label, options.hud_scale)
            render_done = time.perf_counter()
            key = window.show(shown) if window is not None else -1
            now = time.perf_counter()
            latency = (now - frame.captured_at) * 1000
            self.stats.latencies_ms.append(latency)
            self.stats.shown += 1
            self.fps = _smooth_fps(self.fps, now - last_time)
            last_time = now
            timings = {"capture": (start - frame.captured_at) * 1000, "engine": (engine_done - start) * 1000,
                       "render": (render_done - engine_done) * 1000}
            sinks.put(Annotated(shown, explanation, timings))
            if self.hub is not None:
                self.hub.publish(shown, self.view_state(explanation, latency).as_dict(), raw=frame.image)
            last_shown = shown
            self._handle_key(key)
            self._apply_requests(sinks, window, shown)
            if options.max_frames is not None and self.stats.shown >= options.max_frames:
                self.stats.stopped_by = "max frames"
                return

    def _idle_wait(self, stop: StopSignals) -> int:
        stop.wait(0.03)
        return -1

    def _handle_key(self, key: int) -> None:
        """Keys reach the controls; in a kiosk only Esc twice (within 2 s) quits."""
        if key >= 0:
            log.debug("key %d", key)
        if self.kiosk_keys is not None:
            key, quit_now, hint = self.kiosk_keys.filter(key)
            if hint:
                self.hud.say(hint, self.kiosk_keys.window_s)
            if quit_now:
                self.controls.quit = True
        self.controls.handle_key(key)

    def _show_reconnecting(self, source: LatestFrames, window: Window | None, last: np.ndarray | None,
                           stop: StopSignals) -> None:
        """The idle screen while a lost source is reopened; keys and the browser stay alive."""
        height, width = last.shape[:2] if last is not None else (source.info.height or 480, source.info.width or 640)
        detail = f"{source.info.source}: attempt {source.failures}" + (f" ({source.last_error})" if source.last_error else "")
        screen = idle_screen(width, height, "reconnecting...", detail[:90], self.controls.colormap,
                             self.hud.explained_label, self.options.hud_scale)
        self.hud.say("reconnecting", IDLE_REFRESH_S * 2)  # expires once frames flow again
        if self.hub is not None:
            self.hub.publish(screen, {**self.hub.state(), "status": "reconnecting"})
        self._handle_key(window.show(screen, 30) if window is not None else self._idle_wait(stop))

    def view_state(self, explanation: Explanation, latency_ms: float) -> ViewState:
        """What the browser view shows for this frame."""
        label = self.cam.model.label
        score = explanation.score
        return ViewState(
            frame=explanation.frame.index, fps=round(self.fps, 2), latency_ms=round(latency_ms, 1),
            top=explanation.top_entries(label),
            explained={"index": explanation.class_index, "label": short_label(label(explanation.class_index)),
                       "score": None if score is None else round(score, 4)},
            alpha=self.controls.alpha, colormap=self.controls.colormap, paused=self.controls.paused,
            recording=self.recording_path is not None, source=self.hud.source, status=self.hud.current_status(),
            choice=self.choice_state(),
        )

    def choice_state(self) -> dict:
        """What is being explained, as the controls say now (the next frame will show it)."""
        choice = self.controls.choice.describe()
        if "class" in choice:
            choice["label"] = short_label(self.cam.model.label(choice["class"]))
        return choice

    def apply_control(self, change: ControlChange) -> dict:
        """Apply a control from the browser; returns the state with the change in it."""
        self.controls.apply(change)
        state = self.hub.state() if self.hub is not None else {}
        return {**state, "alpha": self.controls.alpha, "colormap": self.controls.colormap,
                "paused": self.controls.paused, "choice": self.choice_state()}

    def _update_hud(self, explanation: Explanation, source_name: str) -> None:
        self.hud.set_classes(explanation.top, explanation.class_index, self.cam.model.label)
        self.hud.fps, self.hud.source = self.fps, source_name
        self.hud.recording = self.recording_path is not None
        self.hud.paused = self.controls.paused

    def _apply_requests(self, sinks: SinkThread, window: Window | None, shown: np.ndarray) -> None:
        controls = self.controls
        if controls.snapshot:
            controls.snapshot = False
            stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
            path = next_free_path(self.options.snapshot_dir / f"stream_cam_{stamp}.png")
            write_image(path, shown)
            self.stats.snapshots.append(path)
            self.hud.say(f"saved {path.name}")
        if controls.toggle_record:
            controls.toggle_record = False
            if self.recording_path is None:
                stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
                self._start_recording(sinks, next_free_path(Path(f"stream_cam_{stamp}.mp4")))
            else:
                sinks.call(self.recorder.stop)
                self.hud.say(f"saved {self.recording_path.name}")
                self.recording_path = None
        if controls.toggle_fullscreen:
            controls.toggle_fullscreen = False
            if window is not None:
                window.toggle_fullscreen()

    def _start_recording(self, sinks: SinkThread, path: Path) -> None:
        self.recording_path = path
        sinks.call(lambda: self.recorder.start(path))
        self.hud.say(f"recording {path.name}")


def _smooth_fps(fps: float, interval: float) -> float:
    if interval <= 0:
        return fps
    current = 1.0 / interval
    return current if fps == 0 else FPS_SMOOTHING * fps + (1 - FPS_SMOOTHING) * current
