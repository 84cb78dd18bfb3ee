"""Live mode: cameras, streams or files in real time -> Grad-CAM -> window, recording, log, browser.

Threads: one capture thread per source keeps only its newest frame (:class:`LatestFrames`);
one engine thread (:class:`BackgroundExplainer`) explains the newest frame of every source in
ONE batched call, as fast as it can; the main thread shows EVERY frame a source delivers, at
the source's rate, with the newest heatmap for it (moved along the motion since it was
computed), handles keys and draws the window (GUI toolkits want the main thread); one sink
thread writes the recordings and the log. ``sync=True`` is the old lock-step mode: every
shown frame waits for its own heatmap. Every resource is entered on one ExitStack, so every
thread is joined and every recording finalized whatever ends the run.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from ..engine.motion import MotionCompensator
from ..engine.stream import ClassChoice, StreamChoice, StreamExplainer, TemporalSmoother
from ..errors import InputError, OutputError
from ..frames import Explanation, Frame
from ..models.labels import resolve_class
from ..render.mosaic import mosaic
from ..sinks.files import next_free_path, write_image
from ..sinks.recorder import Recorder
from ..sinks.window import Window
from ..sinks.worker import JsonlLog, SinkThread
from ..sources.latest import LatestFrames
from ..sources.cameras import CameraSettings
from ..sources.readers import Reader, open_reader
from ..web.broadcast import Broadcaster
from ..web.server import WebServer
from ..web.state import ControlChange
from .controls import Controls
from .heatmaps import BackgroundExplainer
from .kiosk import KioskKeys
from .live_options import LiveOptions, LiveStats
from .live_stream import LiveStream, choice_state
from .pipeline import FramePipeline, frame_path_for, StreamView
from .signals import StopSignals

if TYPE_CHECKING:  # the engine's module loads TensorFlow; the checks before it must not
    from ..engine.explainer import Explains

log = logging.getLogger(__name__)

IDLE_REFRESH_S = 0.2
FIRST_HEATMAP_TIMEOUT_S = 120.0  # a huge model on a slow machine, traced for the first time


class LiveRun:
    """One live session. ``run()`` returns :class:`LiveStats`; everything is closed after."""

    def __init__(self, cam: Explains, options: LiveOptions,
                 reader_factory: Callable[[], Reader] | Sequence[Callable[[], Reader]] | None = None) -> None:
        options.validate()
        self.cam = cam
        self.options = options
        self._openers: list[Callable[[], Reader]]
        if reader_factory is None:
            modes = list(options.cameras) or [CameraSettings()] * len(options.sources)
            self._openers = [functools.partial(open_reader, spec, mode) for spec, mode in zip(options.sources, modes)]
        elif callable(reader_factory):
            self._openers = [reader_factory]
        else:
            self._openers = list(reader_factory)
        choices = [ClassChoice(options.top_k, list(options.classes)) for _ in self._openers]
        self.controls = Controls(choices, options.alpha, options.colormap,
                                 resolve_class=lambda spec: resolve_class(spec, cam.model.labels))
        self.pipeline = FramePipeline(StreamExplainer(cam, choices[0], options.top_k, options.smooth), cam.model.label,
                                      frame_path=frame_path_for(cam, options.render))
        self.cams: dict[str, Explains] = {cam.method_name: cam}  # built on the first switch to each method
        self.controls.method = cam.method_name
        self.controls.methods = tuple(cam.methods)
        self.motion = MotionCompensator("off" if options.sync else options.motion)
        self.kiosk_keys = KioskKeys() if options.kiosk else None
        self.stats = LiveStats()
        self.streams: list[LiveStream] = []
        self.engine: BackgroundExplainer | None = None
        self._arrived = threading.Event()

    # -- the run -------------------------------------------------------------------------------
    def run(self) -> LiveStats:
        options = self.options
        self.cam.warm_up()  # before the sources start: no frames dropped while tracing
        started = time.perf_counter()
        log_sink: JsonlLog | None = None
        try:
            with contextlib.ExitStack() as resources:
                self._open_streams(resources)
                if options.log is not None:
                    log_sink = JsonlLog(options.log, self.cam.model.label, options.overwrite)
                sinks = resources.enter_context(
                    SinkThread([s.recorder for s in self.streams] + ([log_sink] if log_sink else [])))
                self.pipeline.put = sinks.put
                for stream, path in zip(self.streams, options.record_paths()):
                    self._start_recording(sinks, stream, path)
                if not options.sync:
                    self.engine = resources.enter_context(
                        BackgroundExplainer(self.pipeline, [s.choice for s in self.streams], self._select_cam))
                if options.serve is not None:
                    hubs = [Broadcaster() for _ in self.streams]
                    for stream, hub in zip(self.streams, hubs):
                        stream.view.hub = hub
                    resources.enter_context(WebServer(options.serve, hubs, self.apply_control, options.token,
                                                                   options.allow_hosts))
                    print(f"browser view: {options.serve.url}", flush=True)
                window = None
                if options.window:
                    title = self.streams[0].source.info.source if len(self.streams) == 1 else \
                        f"{len(self.streams)} sources"
                    window = Window(f"stream_cam - {title}", options.fullscreen)
                    resources.callback(window.close)
                stop = resources.enter_context(StopSignals())
                # Registered last, so it runs first: the run's time excludes closing the resources.
                resources.callback(self._stop_clock, started)
                self._loop(sinks, window, stop)
                self.stats.stopped_by = self.stats.stopped_by or stop.requested or ""
            if sinks.failure is not None:  # found while finalizing (the loop raises on earlier ones)
                raise OutputError(f"writing failed: {sinks.failure}") from sinks.failure
        finally:
            self._collect_stats(started, log_sink)
        return self.stats

    def _open_streams(self, resources: contextlib.ExitStack) -> None:
        """Open every source (its first frame, or a clear ConnectionError) with its own state."""
        for index, opener in enumerate(self._openers):
            reader = opener()
            info = reader.info
            reopen = opener if (self.options.loop or info.live) else None
            source = LatestFrames(reader, pace=not info.live, reopen=reopen, on_frame=self._arrived.set)
            resources.callback(source.close)
            source.first_frame_or_fail()
            choice = StreamChoice(self.controls.choices[index], TemporalSmoother(self.options.smooth),
                                  trust_every=self.options.trust)
            recorder = Recorder(info.fps, self.options.codec, self.options.overwrite, stream=index,
                                timeline=not info.live)
            self.streams.append(LiveStream(index, source, choice, recorder, StreamView(index=index)))

    def _stop_clock(self, started: float) -> None:
        self.stats.elapsed_s = time.perf_counter() - started

    def _collect_stats(self, started: float, log_sink: JsonlLog | None) -> None:
        stats = self.stats
        stats.elapsed_s = stats.elapsed_s or time.perf_counter() - started
        stats.shown_per_stream = [s.shown for s in self.streams]
        stats.shown = sum(stats.shown_per_stream)
        stats.dropped = sum(s.source.dropped for s in self.streams)
        stats.latencies_ms = [v for s in self.streams for v in s.latencies_ms]
        stats.ages = [v for s in self.streams for v in s.ages]
        stats.heatmaps = sum(self.engine.updates) if self.engine is not None else stats.shown
        stats.recordings = [r for s in self.streams for r in s.recorder.finished]
        stats.log_lines = log_sink.lines if log_sink is not None else 0

    # -- the display loop ----------------------------------------------------------------------
    def _loop(self, sinks: SinkThread, window: Window | None, stop: StopSignals) -> None:
        controls, options = self.controls, self.options
        last_cycle = time.perf_counter()
        while not controls.quit and stop.requested is None:
            if options.cycle and time.perf_counter() - last_cycle >= options.cycle:
                for choice in controls.choices:
                    choice.cycle()
                last_cycle = time.perf_counter()
            if controls.resume_if_paused_longer_than(options.pause_timeout):
                for stream in self.streams:
                    stream.hud.say("resumed")
            if controls.paused and any(s.last_shown is not None for s in self.streams):
                self._show(window, stop, wait_ms=30)
                self._apply_requests(sinks, window)
                continue
            # Frames waiting (a file's backlog after a stall) are taken at once; only when there are
            # none does the loop wait for one. (Waiting first kept a backlog of 3 frames forever after
            # the browser view's start-up: every frame shown 100 ms late.)
            self._arrived.clear()
            fresh = self._fresh_frames()
            if not fresh:
                self._arrived.wait(IDLE_REFRESH_S)
                fresh = self._fresh_frames()
            if not fresh:
                if all(s.source.ended.is_set() for s in self.streams):
                    self.stats.stopped_by = "end of stream"
                    return
                self._show_reconnecting(window, stop)
                continue
            for stream, frame, explanation in self._explain(fresh):
                self._present(stream, frame, explanation)
            key = self._show(window, stop)
            self._handle_key(key)
            self._apply_requests(sinks, window)
            if options.max_frames is not None and self.streams[0].shown >= options.max_frames:
                self.stats.stopped_by = "max frames"
                return

    def _fresh_frames(self) -> list[tuple[LiveStream, Frame]]:
        """Each stream's next frame not yet shown, without waiting."""
        return [(s, f) for s in self.streams if (f := s.source.get(timeout=0)) is not None]

    def _explain(self, fresh: list[tuple[LiveStream, Frame]]) -> list[tuple[LiveStream, Frame, Explanation]]:
        """Each fresh frame with the explanation to show on it: its own (sync), or the newest one."""
        if self.engine is None:
            self.pipeline.use(self._select_cam(), [s.choice for s in self.streams])
            explanations = self.pipeline.explain([f for _, f in fresh], [s.choice for s, _ in fresh])
            return [(s, f, e) for (s, f), e in zip(fresh, explanations)]
        out = []
        for stream, frame in fresh:
            self.engine.offer(stream.index, frame)
            explanation = self.engine.latest(stream.index)
            if explanation is None:  # the stream's very first heatmap: wait for it once
                explanation = self._first_heatmap(stream)
            out.append((stream, frame, explanation))
        return out

    def _select_cam(self) -> Explains:
        """The engine for the method the controls ask for; a new method is built on first use
        (in the engine thread, while the display goes on with the last heatmaps), on the run's
        runtime when it has that method's form (LiteRT), else on TensorFlow."""
        name = self.controls.method
        if name not in self.cams:
            from ..engine.gradcam import CAM  # only a TensorFlow engine offers other methods
            from ..engine.litert import LiteRTExplainer
            from ..engine.methods import build_method

            base = self.cam
            engine = base.source if isinstance(base, LiteRTExplainer) else base
            if not isinstance(engine, CAM):
                raise InputError(f"this model does not offer {name!r}")
            method = build_method(name, engine.model, jit_compile=engine.jit_compile,
                                  score_channels=self.options.score_channels)
            method.device = engine.device
            # On LiteRT when it has the method's form, else on TensorFlow:
            convert = base.convert if isinstance(base, LiteRTExplainer) else None
            built = convert(method) if convert is not None else method
            built.warm_up()
            self.cams[name] = built
        return self.cams[name]

    def _first_heatmap(self, stream: LiveStream) -> Explanation:
        if self.engine is None:  # started in run(), before the first frame
            raise RuntimeError("the engine thread is not running")
        explanation = self.engine.wait_latest(stream.index, FIRST_HEATMAP_TIMEOUT_S)
        if explanation is None:
            raise InputError(f"the model gave no heatmap within {FIRST_HEATMAP_TIMEOUT_S:.0f} s")
        return explanation

    def _present(self, stream: LiveStream, frame: Frame, explanation: Explanation) -> None:
        """Draw ``frame`` with the newest heatmap moved to it; hand it to the recording, the log and the browser."""
        start = time.perf_counter()
        thumb = stream.remember(frame, self.motion)
        age = frame.index - explanation.frame.index
        heatmap = stream.heatmap_for(frame, explanation, self.motion, thumb)
        stream.fill_hud(explanation, age, self.controls)
        look = stream.look(self.controls, self.options.hud_scale, legend=self.options.kiosk,
                           operator=self.options.window)
        timings = {"capture": (start - frame.captured_at) * 1000, "engine": explanation.engine_ms}
        item = self.pipeline.annotate(frame, explanation, heatmap, stream.view, look, timings)
        done = time.perf_counter()
        timings["render"] = (done - start) * 1000  # moving the heatmap included
        latency = (done - frame.captured_at) * 1000
        stream.count_shown(done, latency, age)
        self.stats.shown += 1  # live, for watchers (benchmarks, soak); recounted per stream at the end
        stream.last_clean = item.image
        stream.last_shown = item.screen if item.screen is not None else item.image
        self.pipeline.deliver(item, stream.view, look,
                              **stream.live_state(explanation, latency, self.controls, self.cam.model.label))

    def _show(self, window: Window | None, stop: StopSignals, wait_ms: int = 1) -> int:
        """Show every stream's newest picture (a mosaic for several); returns the key pressed."""
        if window is None:
            if wait_ms > 1:
                stop.wait(wait_ms / 1000)
            return -1
        pictures = [s.last_shown for s in self.streams if s.last_shown is not None]
        if not pictures:
            return -1
        return window.show(mosaic(pictures, self.controls.selected), wait_ms)

    def _show_reconnecting(self, window: Window | None, stop: StopSignals) -> None:
        """Lost sources show "reconnecting..." in their tile; keys and the browser stay alive."""
        for stream in self.streams:
            if stream.source.reconnecting:
                screen = stream.reconnecting_screen(self.controls, self.options.hud_scale)
                stream.last_shown = screen
                stream.hud.say("reconnecting", IDLE_REFRESH_S * 2)  # expires once frames flow again
                hub = stream.view.hub
                if hub is not None:
                    hub.publish(screen, {**hub.state(), "status": "reconnecting"})
        self._handle_key(self._show(window, stop, wait_ms=30))

    # -- keys, browser controls, one-shot requests -------------------------------------------
    def _handle_key(self, key: int) -> None:
        """Keys reach the controls; in a kiosk only Esc twice (within 2 s) quits."""
        if key >= 0:
            log.debug("key %d", key)
        if self.kiosk_keys is not None:
            key, quit_now, hint = self.kiosk_keys.filter(key)
            if hint:
                self.streams[self.controls.selected].hud.say(hint, self.kiosk_keys.window_s)
            if quit_now:
                self.controls.quit = True
        self.controls.handle_key(key)

    def apply_control(self, change: ControlChange) -> dict:
        """Apply a control from the browser; returns the state with the change in it."""
        number = self.controls.selected if change.stream is None else change.stream
        if not 0 <= number < len(self._openers):
            raise InputError(f"stream must be from 0 to {len(self._openers) - 1}")
        self.controls.apply(change, number)
        stream = self.streams[number] if number < len(self.streams) else None
        state = stream.view.hub.state() if stream is not None and stream.view.hub is not None else {}
        return {**state, "alpha": self.controls.alpha, "colormap": self.controls.colormap,
                "paused": self.controls.paused, "stream": number, "method": self.controls.method,
                "choice": choice_state(self.controls.choices[number], self.cam.model.label)}

    def _apply_requests(self, sinks: SinkThread, window: Window | None) -> None:
        controls = self.controls
        stream = self.streams[controls.selected]
        if controls.snapshot and stream.last_clean is not None:
            controls.snapshot = False
            stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
            path = next_free_path(self.options.snapshot_dir / f"stream_cam_{stamp}.png")
            write_image(path, stream.last_clean)
            self.stats.snapshots.append(path)
            stream.hud.say(f"saved {path.name}")
        if controls.toggle_record:
            controls.toggle_record = False
            if stream.recording_path is None:
                stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
                self._start_recording(sinks, stream, next_free_path(Path(f"stream_cam_{stamp}.mp4")))
            else:
                sinks.call(stream.recorder.stop)
                stream.hud.say(f"saved {stream.recording_path.name}")
                stream.recording_path = None
        if controls.toggle_fullscreen:
            controls.toggle_fullscreen = False
            if window is not None:
                window.toggle_fullscreen()

    def _start_recording(self, sinks: SinkThread, stream: LiveStream, path: Path) -> None:
        stream.recording_path = path
        sinks.call(lambda: stream.recorder.start(path))
        stream.hud.say(f"recording {path.name}")
